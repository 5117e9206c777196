//! `[audit.forward]` against a real rsyslog from Debian: an agent makes a stream of requests,
//! the daemon forwards every audit record as RFC 5424 syslog over TCP, and in the middle of
//! the stream rsyslog is stopped and started again (a clean restart), then frozen and killed
//! with records in its socket buffer (a crash) and started again. In the end rsyslog holds
//! every record the daemon exports, byte for byte and in order.
//!
//! At least once: a record the collector had acknowledged at the TCP level but not yet
//! written out when it went away is sent again after the reconnect (see
//! `crates/audit/src/forward/acks.rs`; the crash loses such records, so without the resend
//! this test fails). So the received stream is the export, except that it may step back
//! once per outage and repeat records it already holds; the test folds such repeats and
//! checks that nothing else differs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cordon_e2e::rsyslog::{Rsyslog, TLS_NAME};
use cordon_e2e::{
    Daemon, DaemonOpts, HttpServer, NetNs, PolicyDir, Reply, TestDns, require_root_or_skip,
};
use serde_json::Value;

const AGENT: &str = "shipper";
const REQUESTS: usize = 3000;
/// Paced, so the stream outlasts the collector's outage.
const RATE: &str = "200/s";
const T: Duration = Duration::from_secs(120);

fn policies() -> PolicyDir {
    let p = PolicyDir::new().unwrap();
    p.write(
        AGENT,
        &format!(
            r#"agents = ["{AGENT}"]
default = "deny"

[[rule]]
id = "net-test"
action = "tcp.connect"
cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
decision = "allow"

[[rule]]
id = "http-ok"
action = "http.request"
when = 'params.path == "/ok"'
decision = "allow"
"#
        ),
    )
    .unwrap();
    p
}

/// `cordon.toml` with `[audit.forward]` to `address` (plus `extra` lines), in a root-only
/// temporary directory.
fn config(address: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cordon.toml");
    std::fs::write(
        &path,
        format!("[audit.forward]\naddress = \"{address}\"\nhostname = \"e2e-host\"\n{extra}"),
    )
    .unwrap();
    (dir, path)
}

/// The fake internet, the agent's policy and a daemon forwarding to `address`.
struct Setup {
    ns: NetNs,
    http: HttpServer,
    _dns: TestDns,
    _policies: PolicyDir,
    _conf: tempfile::TempDir,
    daemon: Daemon,
}

fn setup(address: &str, extra: &str) -> Setup {
    let ns = NetNs::new().unwrap();
    let http = HttpServer::start(&ns).unwrap();
    http.route(
        None,
        "/ok",
        Reply::json(200, &serde_json::json!({"ok": true})),
    );
    let dns = TestDns::start().unwrap();
    let policies = policies();
    let (conf_dir, conf) = config(address, extra);
    let opts = DaemonOpts::new(&policies.path(), dns.addr())
        .arg("--config")
        .arg(conf.to_str().unwrap());
    let daemon = Daemon::start(opts).unwrap();
    Setup {
        ns,
        http,
        _dns: dns,
        _policies: policies,
        _conf: conf_dir,
        daemon,
    }
}

/// One curl, `n` paced requests on one kept-alive connection: one decision record each.
fn stream(s: &Setup, n: usize) -> std::process::Child {
    let url = format!("http://{}/ok?i=[1-{n}]", s.ns.v4());
    s.daemon
        .agent(
            AGENT,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--rate",
                RATE,
                "--max-time",
                "100",
                &url,
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until rsyslog holds every record the daemon exports; returns what it received, the
/// export, and the resend runs.
fn all_arrived(rsyslog: &Rsyslog, daemon: &Daemon) -> (Vec<String>, Vec<String>, Vec<usize>) {
    let mut exported = export(daemon);
    wait_for("rsyslog to hold every exported record", T, || {
        exported = export(daemon);
        let (folded, _) = fold(&rsyslog.received(), &exported);
        folded.len() == exported.len()
    });
    let received = rsyslog.received();
    let (folded, resends) = fold(&received, &exported);
    assert_eq!(folded, exported, "every record, as exported, in order");
    (received, exported, resends)
}

fn export(d: &Daemon) -> Vec<String> {
    let out = d.cordon(&["audit", "export", "--format", "jsonl"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn seq(line: &str) -> u64 {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    v["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq: {line}"))
}

/// The received lines with re-sent ones folded, and the length of each resend (a run of
/// repeats after the stream stepped back).
/// Panics if a line is not the exported one, a record is missing, or a repeat is not exactly
/// what arrived the first time.
fn fold(received: &[String], exported: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut folded: Vec<String> = Vec::new();
    let mut resends = Vec::new();
    let mut prev = 0;
    for line in received {
        let s = seq(line);
        if s <= prev {
            resends.push(0);
        }
        prev = s;
        if let Some(first) = folded.get((s - 1) as usize) {
            assert_eq!(first, line, "resent record {s} differs from its first copy");
            if let Some(run) = resends.last_mut() {
                *run += 1;
            }
            continue;
        }
        let next = folded.len() as u64 + 1;
        assert_eq!(
            s, next,
            "record {next} is missing (record {s} came instead)"
        );
        let want = exported
            .get((s - 1) as usize)
            .unwrap_or_else(|| panic!("record {s} was never exported"));
        assert_eq!(line, want, "record {s} arrived other than exported");
        folded.push(line.clone());
    }
    (folded, resends)
}

#[test]
fn every_record_reaches_rsyslog_in_order_across_a_collector_restart() {
    require_root_or_skip!();
    let mut rsyslog = Rsyslog::start().unwrap();
    let w = setup(&rsyslog.address(), "");
    let (http, daemon) = (&w.http, &w.daemon);
    let mut agent = stream(&w, REQUESTS);

    // Mid-stream: rsyslog has some records, the agent is still making more.
    wait_for("rsyslog to receive the first records", T, || {
        rsyslog.received().len() >= 50
    });
    rsyslog.stop().unwrap();
    let at_stop = rsyslog.received().len();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent is still making requests while rsyslog is down"
    );
    rsyslog.resume().unwrap();

    // Later in the stream: a crash, with what it was sent while frozen still unread.
    wait_for("rsyslog to catch up after the restart", T, || {
        rsyslog.received().len() >= at_stop + 300
    });
    // Long enough past the grace that the cursor moved on this connection.
    std::thread::sleep(Duration::from_secs(4));
    rsyslog.crash(Duration::from_millis(800)).unwrap();
    let at_crash = rsyslog.received().len();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent is still making requests after the crash"
    );
    rsyslog.resume().unwrap();

    let status = agent.wait().unwrap();
    assert!(status.success(), "the agent's requests failed: {status}");
    assert_eq!(
        http.count(),
        REQUESTS,
        "every request was allowed and served"
    );

    let (received, exported, resends) = all_arrived(&rsyslog, daemon);
    assert!(
        exported.len() > REQUESTS,
        "the stream covered the outage: {} records",
        exported.len()
    );
    assert!(
        at_stop < exported.len() / 2,
        "rsyslog stopped mid-stream ({at_stop} of {} received)",
        exported.len()
    );
    assert!(
        resends.len() <= 2,
        "two outages, at most one resend each: {resends:?}"
    );
    // The crash came long after the restart: records confirmed before it were not sent again,
    // only the unconfirmed window (about ack_grace_ms of them, plus those sent while frozen).
    if let Some(&last) = resends.last() {
        assert!(
            last < at_crash - at_stop,
            "the crash resent only what was unconfirmed: {last} of {}",
            at_crash - at_stop
        );
    }
    let dups = received.len() - exported.len();
    eprintln!(
        "forwarded {} records, {} lines received ({dups} resent: {resends:?}), \
         {at_stop} before the stop, {at_crash} before the crash",
        exported.len(),
        received.len()
    );

    // The cursor in the state dir says how far the collector has it.
    let cursor_file = daemon.state_dir().join("audit-forward.cursor");
    let read_cursor =
        || -> Option<Value> { serde_json::from_slice(&std::fs::read(&cursor_file).ok()?).ok() };
    wait_for(
        "the cursor to reach the head",
        Duration::from_secs(10),
        || read_cursor().is_some_and(|c| c["seq"].as_u64() == Some(exported.len() as u64)),
    );
    assert_eq!(read_cursor().unwrap()["collector"], rsyslog.address());
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn records_reach_rsyslog_over_tls_verified_against_its_ca() {
    require_root_or_skip!();
    let mut rsyslog = Rsyslog::start_tls().unwrap();
    let extra = format!(
        "tls = true\nca_file = \"{}\"\nserver_name = \"{TLS_NAME}\"\n",
        rsyslog.ca_path().display()
    );
    let w = setup(&rsyslog.address(), &extra);
    let mut agent = stream(&w, 400);
    wait_for("rsyslog to receive records over TLS", T, || {
        rsyslog.received().len() >= 50
    });
    rsyslog.stop().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    rsyslog.resume().unwrap();
    assert!(agent.wait().unwrap().success());
    let (received, exported, resends) = all_arrived(&rsyslog, &w.daemon);
    assert!(exported.len() > 400, "{} records", exported.len());
    assert!(
        resends.len() <= 1,
        "one outage, at most one resend: {resends:?}"
    );
    eprintln!(
        "over TLS: {} records, {} lines received",
        exported.len(),
        received.len()
    );
}
