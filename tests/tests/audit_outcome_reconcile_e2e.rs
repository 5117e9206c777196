//! A forwarded flow is in flight when the daemon goes away; at the next start its decision gets
//! an `outcome`: `aborted` after a clean stop (SIGTERM), `unknown` after a crash (SIGKILL),
//! so `cordon audit verify` and the trail show the gap instead of a decision that silently
//! never ended.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cordon_audit::{AuditRecord, Decision, EventKind, OutcomeState};
use cordon_e2e::{TcpEcho, World, require_root_or_skip};

const AGENT: &str = "holder";
const PORT: u16 = 7100;
const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "connect-test"
action = "tcp.connect"
cidrs = ["203.0.113.0/24"]
decision = "allow"
"#;

/// Connects, says so, and holds the connection open without sending a byte (so Cordon decides
/// it as a plain `tcp.connect` and splices it).
const HOLD: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("connected", flush=True)
time.sleep(120)
"#;

fn hold(w: &World) -> Child {
    let ip = w.ns.v4().to_string();
    let port = PORT.to_string();
    let mut child = w
        .agent(AGENT, &["/usr/bin/python3", "-c", HOLD, &ip, &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "connected");
    child
}

/// The allowed `tcp.connect` of the holding agent, once it is recorded.
fn flow_decision(w: &World) -> AuditRecord {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let trail = w.trail().unwrap();
        let found = trail.records().iter().find(|r| {
            r.kind == EventKind::TcpConnect
                && r.decision == Some(Decision::Allow)
                && r.agent.as_deref() == Some(AGENT)
        });
        if let Some(r) = found {
            return r.clone();
        }
        assert!(
            Instant::now() < until,
            "the flow's decision was never recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn outcomes_of(w: &World, seq: u64) -> Vec<AuditRecord> {
    w.trail()
        .unwrap()
        .records()
        .iter()
        .filter(|r| r.kind == EventKind::Outcome && r.decision_seq == Some(seq))
        .cloned()
        .collect()
}

fn verify_line(w: &World) -> String {
    let out = w.daemon.cordon(&["audit", "verify"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_flow_cut_by_a_crash_is_unknown_and_by_a_clean_stop_aborted() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let _echo = TcpEcho::start_on(&w.ns, &[(w.ns.v4().into(), PORT)]).unwrap();

    // In flight, then the daemon is killed: nobody can say whether the flow completed.
    let mut first = hold(&w);
    let crashed = flow_decision(&w);
    assert!(
        outcomes_of(&w, crashed.seq).is_empty(),
        "no outcome while in flight"
    );
    let open = verify_line(&w);
    assert!(
        open.contains("1 open"),
        "verify names the open decision: {open}"
    );
    w.daemon.kill9().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    w.daemon.restart().unwrap();
    let given = outcomes_of(&w, crashed.seq);
    assert_eq!(given.len(), 1, "exactly one outcome: {given:?}");
    assert_eq!(given[0].outcome, Some(OutcomeState::Unknown));
    assert_eq!(given[0].agent.as_deref(), Some(AGENT));
    assert!(
        given[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("without a clean stop"),
        "{:?}",
        given[0].error
    );

    // In flight, then a clean stop: the stop cut it.
    let mut second = hold(&w);
    let stopped = {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let trail = w.trail().unwrap();
            let later = trail.records().iter().rev().find(|r| {
                r.kind == EventKind::TcpConnect
                    && r.decision == Some(Decision::Allow)
                    && r.seq > crashed.seq
            });
            if let Some(r) = later {
                break r.clone();
            }
            assert!(Instant::now() < until, "the second flow was never recorded");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    w.daemon.restart().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    let given = outcomes_of(&w, stopped.seq);
    assert_eq!(given.len(), 1, "exactly one outcome: {given:?}");
    assert_eq!(given[0].outcome, Some(OutcomeState::Aborted));

    // `audit tail` shows each decision with its outcome inline.
    let tail = w
        .daemon
        .cordon(&["audit", "tail", "--agent", AGENT, "-n", "50"])
        .unwrap();
    let tail = String::from_utf8_lossy(&tail.stdout).into_owned();
    for (seq, inline) in [(crashed.seq, "→ unknown"), (stopped.seq, "→ aborted")] {
        let line = tail
            .lines()
            .find(|l| l.starts_with(&format!("#{seq} ")))
            .unwrap_or_else(|| panic!("decision #{seq} not in the tail:\n{tail}"));
        assert!(
            line.contains("ALLOW tcp.connect") && line.contains(inline),
            "{line}"
        );
    }
    assert!(
        !tail.contains("OUTCOME"),
        "outcomes are folded into their decisions:\n{tail}"
    );

    // OCSF: a flow's outcome closes its Network Activity; unknown is Unknown, aborted Failure.
    let ocsf = w
        .daemon
        .cordon(&["audit", "export", "--format", "ocsf"])
        .unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&ocsf.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |seq: u64| {
        events
            .iter()
            .find(|e| {
                e["unmapped"]["cordon"]["kind"] == "outcome"
                    && e["unmapped"]["cordon"]["decision_seq"] == seq
            })
            .unwrap_or_else(|| panic!("no OCSF outcome for #{seq}"))
    };
    assert_eq!(of(crashed.seq)["status"], "Unknown");
    assert_eq!(of(stopped.seq)["status"], "Failure");
    assert_eq!(of(stopped.seq)["activity_name"], "Close");
    assert_eq!(
        of(stopped.seq)["metadata"]["correlation_uid"],
        stopped.seq.to_string()
    );

    let v = verify_line(&w);
    assert!(v.starts_with("ok: "), "{v}");
    assert!(v.contains("0 open"), "every gap has its outcome: {v}");
    assert!(v.contains("1 aborted") && v.contains("1 unknown"), "{v}");
}
