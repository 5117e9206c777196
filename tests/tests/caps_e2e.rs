//! Per-agent caps against the real daemon: an agent flooding past its
//! connection cap is refused at once, the trail holds one record for the
//! burst's first refusal and one summary with the count (not one record per
//! connection), the metrics count every refusal, and a second agent is
//! served during the flood. DNS queries over their rate, a second pending
//! approval and a body over the request-byte cap are refused the same way,
//! declared or streamed without a length (HTTP/1.1 chunked, HTTP/2).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_audit::{AuditRecord, Decision, EventKind};
use cordon_e2e::world::{PYTHON, show, stdout};
use cordon_e2e::{World, require_root_or_skip, run_with_timeout};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// Everyone may resolve and fetch allowed.test over plain HTTP; `/ask`
/// needs a human (who never answers here).
const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-allowed"
action = "dns.query"
hosts = ["allowed.test"]
decision = "allow"

[[rule]]
id = "ask"
action = "http.request"
hosts = ["allowed.test"]
when = 'params.path.startsWith("/ask")'
decision = "approve"
approval_timeout = "4s"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

/// The flooding agent's own caps (the others keep the daemon's defaults).
const FLOOD_CAPS: &str = r#"
agents = ["flood"]

[caps]
connections = 10
connections_per_second = 1000
dns_queries_per_second = 1
pending_approvals = 1
request_bytes_in_flight = 1000
"#;

/// Opens N connections to allowed.test:80, each sending a head that never
/// ends (slow-head), waits, then reports how many the proxy closed and how
/// many it holds; keeps them open for HOLD seconds more.
const FLOOD: &str = r#"
import json, socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
ip = socket.gethostbyname("allowed.test")
socks = []
held = refused = 0
for i in range(n):
    try:
        # On loopback the proxy's reset can come before connect() returns.
        s = socket.create_connection((ip, 80), timeout=5)
    except OSError:
        refused += 1
        continue
    try:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: allowed.test\r\n")
    except OSError:
        pass
    socks.append(s)
time.sleep(2)
for s in socks:
    s.setblocking(False)
    try:
        data = s.recv(1)
        refused += 1  # b"": closed by the proxy
    except BlockingIOError:
        held += 1
    except OSError:
        refused += 1  # reset by the proxy
print(json.dumps({"held": held, "refused": refused}), flush=True)
time.sleep(hold)
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn world() -> (World, u16) {
    let port = free_port();
    let w =
        World::start_configured(POLICY, &format!("metrics_addr = \"127.0.0.1:{port}\"\n")).unwrap();
    w.policies.write("flood.toml", FLOOD_CAPS).unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    (w, port)
}

fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = run_with_timeout(
        Command::new("curl").args(["-sS", "--max-time", "10", "--noproxy", "*", &url]),
        T,
    )
    .unwrap();
    stdout(&out)
}

/// The value of one metrics sample, 0 when absent.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The records of `chain` under rule `cap:<cap>`.
fn cap_records(w: &World, chain: &str, cap: &str) -> Vec<AuditRecord> {
    let rule = format!("cap:{cap}");
    w.trail()
        .unwrap()
        .of_chain(chain)
        .records()
        .iter()
        .filter(|r| r.rule.as_deref() == Some(rule.as_str()))
        .cloned()
        .collect()
}

/// Refusals the records account for: one per opening record, plus the
/// count each summary (`cap.burst`) carries.
fn accounted(records: &[AuditRecord]) -> u64 {
    records
        .iter()
        .map(|r| match r.action.as_deref() {
            Some("cap.burst") => r.params["refused"].as_u64().unwrap(),
            _ => 1,
        })
        .sum()
}

/// Waits until the burst's summary is written (bursts end 2 s after their
/// last refusal; summaries are written each second).
fn wait_for_summary(w: &World, chain: &str, cap: &str) -> Vec<AuditRecord> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let recs = cap_records(w, chain, cap);
        if recs
            .iter()
            .any(|r| r.action.as_deref() == Some("cap.burst"))
        {
            return recs;
        }
        assert!(
            Instant::now() < until,
            "no summary of the {cap} burst: {recs:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_agent_over_its_connection_cap_is_refused_once_per_burst_in_the_trail_while_another_is_served()
{
    require_root_or_skip!();
    let (w, port) = world();
    const N: u64 = 300;
    let mut flood = w.agent("flood", &[PYTHON, "-c", FLOOD, &N.to_string(), "8"]);
    flood.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = flood.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let seen: Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => {
            let _ = child.kill();
            panic!(
                "flood printed {line:?}: {e}; {:?}",
                child.wait_with_output()
            );
        }
    };
    let (held, refused) = (
        seen["held"].as_u64().unwrap(),
        seen["refused"].as_u64().unwrap(),
    );
    eprintln!("flood: {seen}");
    assert_eq!(held + refused, N, "{seen}");
    assert!(held <= 10, "the proxy holds at most the cap: {seen}");
    assert!(refused >= N - 10, "{seen}");

    // While the flood holds its cap, another agent is served promptly.
    let t0 = Instant::now();
    let out = w
        .run(
            "calm",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://allowed.test/calm",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&out).trim(), "200", "{}", show(&out));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let _ = child.kill();
    let _ = child.wait();

    let recs = wait_for_summary(&w, "flood", "connections");
    assert!(
        recs.len() <= 3,
        "one burst, not a record per connection: {recs:#?}"
    );
    let opening = recs
        .iter()
        .find(|r| r.action.as_deref() == Some("tcp.connect"))
        .expect("the burst's first refusal has its own record");
    assert_eq!(opening.kind, EventKind::LimitHit);
    assert_eq!(opening.decision, Some(Decision::Deny));
    assert!(
        opening
            .reason
            .as_deref()
            .unwrap()
            .contains("10 connections held at once (set by policy)"),
        "{opening:?}"
    );
    assert_eq!(
        accounted(&recs),
        refused,
        "every refusal counted once: {recs:#?}"
    );
    assert!(cap_records(&w, "calm", "connections").is_empty());

    let m = scrape(port);
    assert_eq!(
        sample(
            &m,
            "cordon_cap_refusals_total{agent=\"flood\",cap=\"connections\"}"
        ),
        refused,
        "{m}"
    );
    assert!(
        sample(
            &m,
            "cordon_cap_bursts_total{agent=\"flood\",cap=\"connections\"}"
        ) >= 1
    );
    assert!(!m.contains("agent=\"calm\",cap="), "{m}");
}

/// Resolves allowed.test N times as fast as it can; prints successes and failures.
const RESOLVE: &str = r#"
import socket, sys
ok = bad = 0
for i in range(int(sys.argv[1])):
    try:
        socket.gethostbyname("allowed.test"); ok += 1
    except OSError:
        bad += 1
print(ok, bad)
"#;

#[test]
fn dns_queries_over_the_rate_are_refused_and_recorded_once_per_burst() {
    require_root_or_skip!();
    let (w, port) = world();
    let out = w.python("flood", RESOLVE, &["30"]).unwrap();
    let text = stdout(&out);
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let (ok, bad) = (v[0], v[1]);
    // A rate of 1 a second holds a burst of 2 (a few more may refill while
    // the loop runs on a loaded machine).
    assert!((1..=5).contains(&ok), "{text}");
    assert!(bad >= 25, "{text}");
    // The calm agent's queries are its own.
    let calm = w.python("calm", RESOLVE, &["10"]).unwrap();
    assert_eq!(stdout(&calm).trim(), "10 0", "{}", show(&calm));

    let recs = wait_for_summary(&w, "flood", "dns_queries_per_second");
    let refused = sample(
        &scrape(port),
        "cordon_cap_refusals_total{agent=\"flood\",cap=\"dns_queries_per_second\"}",
    );
    // glibc may retry a REFUSED query, so the daemon can refuse more
    // queries than the loop saw failures; each is counted once.
    assert!(refused >= bad, "{refused} < {bad}");
    assert_eq!(accounted(&recs), refused, "{recs:#?}");
    let openings = recs
        .iter()
        .filter(|r| r.action.as_deref() == Some("dns.query"));
    assert!(openings.count() <= 2, "{recs:#?}");
}

#[test]
fn a_second_pending_approval_and_a_body_over_the_byte_cap_get_429() {
    require_root_or_skip!();
    let (w, _port) = world();
    // The first /ask waits for a human (and times out, 403); the second,
    // sent while it waits, is over the cap of one pending approval.
    let script = "curl -s -o /dev/null -w 'first=%{http_code}\\n' --max-time 20 http://allowed.test/ask/1 & \
                  sleep 1.5; \
                  curl -s -o /dev/null -w 'second=%{http_code}\\n' --max-time 20 http://allowed.test/ask/2; \
                  wait";
    let out = w.run("flood", &["/bin/sh", "-c", script]).unwrap();
    let text = stdout(&out);
    assert!(text.contains("second=429"), "{}", show(&out));
    assert!(text.contains("first=403"), "{}", show(&out));
    let recs = cap_records(&w, "flood", "pending_approvals");
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0].params["path"], "/ask/2");

    // 5,000 declared bytes against a cap of 1,000 in flight.
    let body = "x".repeat(5000);
    let out = w
        .run(
            "flood",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\\n%{http_code}",
                "--data-binary",
                &body,
                "http://allowed.test/upload",
            ],
        )
        .unwrap();
    let text = stdout(&out);
    assert!(text.ends_with("\n429"), "{}", show(&out));
    assert!(text.contains("cap:request_bytes_in_flight"), "{text}");
    assert!(
        w.http.received().iter().all(|r| r.path != "/upload"),
        "reached the upstream"
    );
    // Under the cap, the same agent is served.
    let out = w
        .run(
            "flood",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data-binary",
                "small",
                "http://allowed.test/upload-small",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&out).trim(), "200", "{}", show(&out));
}

/// Sends a chunked HTTP/1.1 upload of `argv[2]` chunks of 400 bytes then a
/// marker chunk to allowed.test path `argv[1]`; prints the status and body.
const CHUNKED_UPLOAD: &str = r#"
import http.client, sys
path, n = sys.argv[1], int(sys.argv[2])
def chunks():
    for _ in range(n):
        yield b"c" * 400
    yield b"MARKER-PAST-THE-CAP"
conn = http.client.HTTPConnection("allowed.test", 80, timeout=10)
try:
    conn.request("POST", path, body=chunks(), encode_chunked=True)
    resp = conn.getresponse()
    print(resp.status, resp.read().decode(errors="replace"))
except OSError as e:
    print("error", e)
"#;

#[test]
fn a_streamed_body_without_a_length_is_cut_at_the_byte_cap_over_http1_and_http2() {
    require_root_or_skip!();
    let (w, _port) = world();
    // HTTP/1.1 chunked: 1,200 bytes and the marker against a cap of 1,000.
    let out = w
        .python("flood", CHUNKED_UPLOAD, &["/chunked-h1", "3"])
        .unwrap();
    let text = stdout(&out);
    assert!(text.starts_with("429 "), "{}", show(&out));
    assert!(text.contains("cap:request_bytes_in_flight"), "{text}");

    // HTTP/2 over TLS, the body from a pipe (no content-length).
    let script = "head -c 3000 /dev/zero | tr '\\0' 'h'; printf MARKER-PAST-THE-CAP";
    let upload = format!(
        "({script}) | /usr/bin/curl -sS --http2 --max-time 10 -w '\\n%{{http_code}} %{{http_version}}' \
         -H 'content-type: application/octet-stream' -T - https://allowed.test/chunked-h2"
    );
    let out = w.run("flood", &["/bin/sh", "-c", &upload]).unwrap();
    let text = stdout(&out);
    assert!(text.ends_with("\n429 2"), "{}", show(&out));
    assert!(text.contains("cap:request_bytes_in_flight"), "{text}");

    // Nothing past the cap reached either upstream.
    for r in w.http.received().iter().chain(w.https.received().iter()) {
        assert!(
            !String::from_utf8_lossy(&r.body).contains("MARKER-PAST-THE-CAP"),
            "the marker reached the upstream at {}",
            r.path
        );
    }
    // The first refusal of the burst is recorded with the request it cut;
    // the allowing decision's outcome says why it did not complete.
    let recs = cap_records(&w, "flood", "request_bytes_in_flight");
    assert!(
        recs.iter().any(|r| r.params["path"] == "/chunked-h1"),
        "{recs:#?}"
    );

    // Under the cap, a chunked body arrives whole (held bytes were released).
    let out = w
        .python("flood", CHUNKED_UPLOAD, &["/chunked-ok", "1"])
        .unwrap();
    assert!(stdout(&out).starts_with("200 "), "{}", show(&out));
    let got = w.http.received();
    let ok = got
        .iter()
        .find(|r| r.path == "/chunked-ok")
        .expect("arrived");
    assert_eq!(ok.body.len(), 400 + "MARKER-PAST-THE-CAP".len());
}
