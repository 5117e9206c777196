//! The audit trail under load: every request the upstream received has
//! exactly one allow record, none lost and none duplicated, across several
//! agents at once and across a daemon SIGKILLed mid-load (strict mode).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use cordon_audit::Decision;
use cordon_e2e::world::ALLOWED_TEST_ONLY;
use cordon_e2e::world::{PYTHON, show};
use cordon_e2e::{World, require_root_or_skip};

const POLICY: &str = ALLOWED_TEST_ONLY;

/// Keep-alive GETs, each to a path unique to this agent and iteration;
/// reconnects after a failure (the daemon may be gone for a while).
const LOAD: &str = r#"
import http.client, sys, time
name, n = sys.argv[1], int(sys.argv[2])
conn = None
ok = 0
for i in range(n):
    try:
        if conn is None:
            conn = http.client.HTTPConnection("allowed.test", 80, timeout=3)
        conn.request("GET", "/load/%s/%d" % (name, i))
        r = conn.getresponse(); r.read()
        ok += r.status == 200
    except Exception:
        conn = None
        time.sleep(0.05)
print(ok, flush=True)
"#;

/// Paths of allowed http.request records, counted.
fn allowed_paths(w: &World) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in w.trail().unwrap().records() {
        let rec = &r.record;
        if rec.action.as_deref() == Some("http.request")
            && rec.decision == Some(Decision::Allow)
            && let Some(p) = rec.params.get("path").and_then(|p| p.as_str())
        {
            *seen.entry(p.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

fn upstream_paths(w: &World) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in w.http.received() {
        let path = r.path.split('?').next().unwrap_or("").to_string();
        *seen.entry(path).or_insert(0) += 1;
    }
    seen
}

#[test]
fn every_request_under_load_from_several_agents_has_exactly_one_allow_record() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let agents = ["load-a", "load-b", "load-c"];
    let per_agent = "700";
    let children: Vec<_> = agents
        .iter()
        .map(|a| {
            w.agent(a, &[PYTHON, "-c", LOAD, a, per_agent])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    let upstream = upstream_paths(&w);
    let audited = allowed_paths(&w);
    assert_eq!(
        upstream.len(),
        2100,
        "not every request reached the upstream"
    );
    assert!(
        upstream.values().all(|n| *n == 1),
        "the upstream saw a request twice"
    );
    assert_eq!(
        audited, upstream,
        "allow records and upstream requests differ"
    );
    let verify = w.daemon.cordon(&["audit", "verify"]).unwrap();
    assert!(verify.status.success(), "{}", show(&verify));
}

#[test]
fn a_daemon_sigkilled_under_load_keeps_a_record_of_every_forwarded_request() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let child = w
        .agent("crashy", &[PYTHON, "-c", LOAD, "crashy", "1500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.http.wait_for_count(200, Duration::from_secs(30)).unwrap();
    w.daemon.kill9().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    w.daemon.restart().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));

    let verify = w.daemon.cordon(&["audit", "verify"]).unwrap();
    assert!(
        verify.status.success(),
        "chain broken after the crash: {}",
        show(&verify)
    );
    let upstream = upstream_paths(&w);
    let audited = allowed_paths(&w);
    let unaudited: Vec<&String> = upstream
        .keys()
        .filter(|p| !audited.contains_key(*p))
        .collect();
    assert!(
        unaudited.is_empty(),
        "forwarded without a record: {unaudited:?}"
    );
    assert!(
        audited.values().all(|n| *n == 1),
        "a request was recorded twice"
    );
    // Strict mode may record a request the crash kept from being forwarded,
    // never the reverse.
    assert!(audited.len() >= upstream.len());
}
