//! `cordon audit tail | export | verify` and the metrics endpoint, against a real daemon: an
//! agent makes allowed and denied requests, every decision is in the chain, the chain verifies
//! online and offline, and an edited record is named by `verify` on the stopped host.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cordon_e2e::{
    Daemon, DaemonOpts, HttpServer, NetNs, PolicyDir, Reply, TestDns, require_root_or_skip,
    run_with_timeout,
};
use redb::{ReadableTable, TableDefinition};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
const AGENT: &str = "auditee";
/// The audit crate's record table: seq -> canonical JSON (docs/audit.md, "Storage").
const CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_chunks");
const REQUIRED: [&str; 10] = [
    "seq",
    "ts",
    "agent",
    "action",
    "params",
    "decision",
    "rule",
    "policy_version",
    "prev_hash",
    "hash",
];

struct World {
    ns: NetNs,
    http: HttpServer,
    _dns: TestDns,
    _policies: PolicyDir,
    daemon: Daemon,
    metrics_port: u16,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `/ok` is allowed, anything else denied by default.
fn world() -> World {
    let ns = NetNs::new().unwrap();
    let http = HttpServer::start(&ns).unwrap();
    http.route(
        None,
        "/ok",
        Reply::json(200, &serde_json::json!({"ok": true})),
    );
    let dns = TestDns::start().unwrap();
    let policies = PolicyDir::new().unwrap();
    policies
        .write(
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
    let metrics_port = free_port();
    let opts = DaemonOpts::new(&policies.path(), dns.addr())
        .arg("--metrics-addr")
        .arg(&format!("127.0.0.1:{metrics_port}"));
    let daemon = Daemon::start(opts).unwrap();
    World {
        ns,
        http,
        _dns: dns,
        _policies: policies,
        daemon,
        metrics_port,
    }
}

/// The agent fetches `path`; returns the HTTP status curl saw.
fn fetch(w: &World, path: &str) -> String {
    let url = format!("http://{}{path}", w.ns.v4());
    let out = w
        .daemon
        .run_agent(
            AGENT,
            &[
                "curl",
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ],
            T,
        )
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cordon(d: &Daemon, args: &[&str]) -> Output {
    d.cordon(args).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok_stdout(d: &Daemon, args: &[&str]) -> String {
    let o = cordon(d, args);
    assert!(
        o.status.success(),
        "cordon {args:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn http_requests(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "request" && r["action"] == "http.request" && r["agent"] == AGENT)
        .collect()
}

/// Edits one stored record without re-hashing it, as an intruder with the file would. The
/// layout is the one `docs/audit.md` gives: `audit_chunks`, keyed by a run's first seq, each
/// value frames `len u32 LE | record bytes` for consecutive seqs.
fn tamper(db_path: &std::path::Path, seq: u64) {
    let db = redb::Database::open(db_path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(CHUNKS).unwrap();
        let (first, value) = {
            let (k, v) = table.range(..=seq).unwrap().next_back().unwrap().unwrap();
            (k.value(), v.value().to_vec())
        };
        let mut frames = vec![];
        let mut at = 0;
        while at < value.len() {
            let len = u32::from_le_bytes(value[at..at + 4].try_into().unwrap()) as usize;
            frames.push(value[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
        let slot = &mut frames[usize::try_from(seq - first).unwrap()];
        let mut rec: serde_json::Map<String, Value> = serde_json::from_slice(slot).unwrap();
        rec.insert("decision".into(), Value::from("allow"));
        *slot = serde_json::to_vec(&rec).unwrap();
        let mut edited = vec![];
        for f in &frames {
            edited.extend_from_slice(&u32::try_from(f.len()).unwrap().to_le_bytes());
            edited.extend_from_slice(f);
        }
        table.insert(first, edited.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn every_decision_is_exported_verified_and_tampering_is_named_offline() {
    require_root_or_skip!();
    let mut w = world();
    assert_eq!(fetch(&w, "/ok"), "200");
    assert_eq!(fetch(&w, "/ok"), "200");
    assert_eq!(
        fetch(&w, "/forbidden"),
        "403",
        "the denied request got through"
    );
    assert_eq!(
        w.http.count(),
        2,
        "only allowed requests reach the upstream"
    );

    let exported = json_lines(&ok_stdout(
        &w.daemon,
        &["audit", "export", "--format", "jsonl"],
    ));
    for r in &exported {
        for key in REQUIRED {
            assert!(r.get(key).is_some(), "export line lacks {key}: {r}");
        }
    }
    let reqs = http_requests(&exported);
    let decisions: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap(),
                r["params"]["path"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [("allow", "/ok"), ("allow", "/ok"), ("deny", "/forbidden")],
        "one record per decision"
    );
    assert_eq!(reqs[0]["rule"], "http-ok");
    assert!(reqs.iter().all(|r| r["policy_version"].is_string()));
    let seqs: Vec<u64> = exported
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "dense seqs"
    );
    let denied_seq = reqs[2]["seq"].as_u64().unwrap();

    let verified = ok_stdout(&w.daemon, &["audit", "verify"]);
    assert!(
        verified.starts_with(&format!("ok: {} records verified", exported.len())),
        "{verified}"
    );

    let tail = ok_stdout(
        &w.daemon,
        &["audit", "tail", "--agent", AGENT, "--decision", "deny"],
    );
    assert!(
        tail.lines()
            .any(|l| l.contains("DENY request") && l.contains("http.request")),
        "{tail}"
    );
    assert!(tail.lines().all(|l| l.contains(" DENY ")), "{tail}");

    let ocsf = json_lines(&ok_stdout(
        &w.daemon,
        &["audit", "export", "--format", "ocsf"],
    ));
    assert_eq!(ocsf.len(), exported.len());
    assert!(ocsf.iter().all(|e| e["class_uid"].is_u64()), "{ocsf:?}");

    w.daemon.stop().unwrap();
    let offline = ok_stdout(&w.daemon, &["audit", "verify"]);
    assert!(offline.starts_with("ok: "), "offline verify: {offline}");
    let offline_export = json_lines(&ok_stdout(&w.daemon, &["audit", "export"]));
    assert_eq!(
        offline_export, exported,
        "offline export matches the daemon's"
    );

    tamper(&w.daemon.state_dir().join("cordon.redb"), denied_seq);
    let o = cordon(&w.daemon, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with(&format!("FAILED at seq {denied_seq}: hash_mismatch")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn tail_follows_new_decisions_and_metrics_are_served() {
    require_root_or_skip!();
    let w = world();
    let mut follower = w
        .daemon
        .cordon_command(&["audit", "tail", "-f", "--json", "-n", "0"]);
    let mut child = follower
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower must be subscribed before the request, or it is "old" news.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fetch(&w, "/forbidden-follow"), "403");
    let mut seen = None;
    while let Ok(line) = rx.recv_timeout(T) {
        let r: Value = serde_json::from_str(&line).unwrap();
        if r["action"] == "http.request" {
            seen = Some(r);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let r = seen.expect("tail -f printed the new decision");
    assert_eq!(
        (r["decision"].as_str(), r["params"]["path"].as_str()),
        (Some("deny"), Some("/forbidden-follow"))
    );

    let url = format!("http://127.0.0.1:{}/metrics", w.metrics_port);
    let scrape = run_with_timeout(
        Command::new("curl").args(["-sS", "--max-time", "10", "--noproxy", "*", &url]),
        T,
    )
    .unwrap();
    let text = stdout(&scrape);
    for needle in [
        "# TYPE cordon_requests_total counter",
        "cordon_audit_healthy 1",
        "cordon_agents{state=\"running\"}",
        "cordon_approvals_pending 0",
        "cordon_audit_queue_depth ",
        "cordon_decision_latency_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
}
