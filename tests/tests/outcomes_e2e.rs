//! Every forwarded request gets an `outcome` record linked to its decision when the exchange
//! ends: the upstream's status, bytes both ways, time to first byte and total duration, or the
//! error when the upstream failed; a raw `tcp.connect` flow gets its byte counts. `audit tail`
//! shows outcomes inline.

use std::time::{Duration, Instant};

use cordon_audit::{AuditRecord, Decision, EventKind, OutcomeState};
use cordon_e2e::world::{show, stdout};
use cordon_e2e::{TcpEcho, World, require_root_or_skip};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[rule]]
id = "echo"
action = "tcp.connect"
cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
decision = "allow"
"#;

const BODY: &str = r#"{"title":"outcome"}"#;

/// The outcome records of decision `seq`, once there is one (they are written when the
/// exchange ends, after the agent already has its answer).
fn outcome_of(w: &World, seq: u64) -> AuditRecord {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = w.trail().unwrap();
        let found: Vec<&AuditRecord> = trail
            .records()
            .iter()
            .filter(|r| r.kind == EventKind::Outcome && r.decision_seq == Some(seq))
            .collect();
        assert!(found.len() <= 1, "more than one outcome: {found:?}");
        if let Some(r) = found.first() {
            return (*r).clone();
        }
        assert!(Instant::now() < until, "decision {seq} got no outcome");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn decision(w: &World, action: &str) -> AuditRecord {
    let trail = w.trail().unwrap();
    let found: Vec<&AuditRecord> = trail
        .records()
        .iter()
        .filter(|r| r.action.as_deref() == Some(action) && r.decision == Some(Decision::Allow))
        .filter(|r| r.kind != EventKind::Outcome)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_forwarded_request_gets_an_outcome_with_status_bytes_and_timings() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let out = w
        .run(
            "bot",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "content-type: application/json",
                "-d",
                BODY,
                "https://api.github.com/repos/o/r/issues",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&out).trim(), "200", "{}", show(&out));
    let d = decision(&w, "github.issue.create");
    let o = outcome_of(&w, d.seq);
    assert_eq!(o.outcome, Some(OutcomeState::Completed), "{o:?}");
    assert_eq!(o.upstream_status, Some(200));
    assert_eq!(o.bytes_up, Some(BODY.len() as u64));
    assert!(o.bytes_down.is_some_and(|b| b > 0), "{o:?}");
    let (ttfb, total) = (o.ttfb_us.unwrap(), o.total_latency_us.unwrap());
    assert!(ttfb > 0 && ttfb <= total, "{o:?}");
    assert_eq!(o.agent.as_deref(), Some("bot"));
    assert_eq!(o.action.as_deref(), Some("github.issue.create"));

    // audit tail puts the outcome beside its decision.
    let tail = w.daemon.cordon(&["audit", "tail", "-n", "20"]).unwrap();
    let text = stdout(&tail);
    assert!(text.contains("→ 200 in"), "{text}");
}

#[test]
fn an_upstream_that_fails_gives_a_failed_outcome_naming_the_error() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // Nothing listens there: the request is allowed, then fails upstream.
    let out = w
        .run(
            "bot",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "15",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "https://api.github.com:8999/repos/o/r/issues",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&out).trim(), "502", "{}", show(&out));
    let d = decision(&w, "github.issue.read");
    let o = outcome_of(&w, d.seq);
    assert_eq!(o.outcome, Some(OutcomeState::Failed), "{o:?}");
    assert_eq!(o.upstream_status, None);
    assert!(
        o.error
            .as_deref()
            .unwrap_or("")
            .contains("upstream request failed"),
        "{o:?}"
    );
}

#[test]
fn a_raw_tcp_flow_gets_an_outcome_with_its_byte_counts() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let echo = TcpEcho::start_on(&w.ns, &[(w.ns.v4().into(), 7300)]).unwrap();
    let script = "import socket, sys\n\
                  s = socket.create_connection((sys.argv[1], 7300), timeout=10)\n\
                  s.sendall(b'0123456789')\n\
                  got = b''\n\
                  while len(got) < 10:\n    got += s.recv(64)\n\
                  s.close()\n\
                  print(got.decode())";
    let ip = w.ns.v4().to_string();
    let out = w.python("bot", script, &[&ip]).unwrap();
    assert_eq!(stdout(&out).trim(), "0123456789", "{}", show(&out));
    assert_eq!(echo.bytes(), 10);
    let d = decision(&w, "tcp.connect");
    let o = outcome_of(&w, d.seq);
    assert_eq!(o.outcome, Some(OutcomeState::Completed), "{o:?}");
    assert_eq!((o.bytes_up, o.bytes_down), (Some(10), Some(10)), "{o:?}");
}

#[test]
fn with_outcomes_off_forwarded_requests_leave_their_decisions_and_no_outcome() {
    require_root_or_skip!();
    let w = World::start_configured(POLICY, "[audit]\noutcomes = false\n").unwrap();
    // Two agents one after the other: the first exchange ended (its outcome, were there one,
    // queued) before the second decision was written, so the second decision in the trail
    // shows the first outcome had its chance to be recorded.
    for (agent, url) in [
        ("bot", "https://api.github.com/repos/o/r/issues"),
        ("bot2", "https://api.github.com/repos/o/r/pulls"),
    ] {
        let out = w
            .run(
                agent,
                &[
                    "/usr/bin/curl",
                    "-sS",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-d",
                    BODY,
                    url,
                ],
            )
            .unwrap();
        assert_eq!(stdout(&out).trim(), "200", "{}", show(&out));
    }
    decision(&w, "github.issue.create");
    decision(&w, "github.pr.create");
    let trail = w.trail().unwrap();
    let outcomes: Vec<&AuditRecord> = trail
        .records()
        .iter()
        .filter(|r| r.kind == EventKind::Outcome)
        .collect();
    assert!(outcomes.is_empty(), "{outcomes:?}");
}
