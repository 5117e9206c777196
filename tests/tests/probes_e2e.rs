//! Connections an agent resets before sending a byte, against the real
//! daemon: a connect()+close loop to one destination is one record and one
//! summary with the count (not one record per connection), every probe is
//! accounted for, another destination gets its own record, and nothing
//! reaches the destination's server.

use std::time::{Duration, Instant};

use cordon_audit::AuditRecord;
use cordon_e2e::trail::verdict;
use cordon_e2e::world::{ALLOWED_TEST_ONLY, show, stdout};
use cordon_e2e::{World, require_root_or_skip};
use serde_json::json;

/// Connects N times to IP:PORT and resets each connection (SO_LINGER 0)
/// without sending; prints how many connects succeeded.
const RESET_LOOP: &str = r#"
import socket, struct, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for _ in range(n):
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect((ip, port))
        ok += 1
    except OSError:
        pass
    s.close()
print(ok)
"#;

/// The trail's tcp.connect records of `bot` to `port`.
fn probe_records(w: &World, port: u16) -> Vec<AuditRecord> {
    w.trail()
        .unwrap()
        .of_chain("bot")
        .matching("tcp.connect", &[("port", json!(port))])
        .into_iter()
        .cloned()
        .collect()
}

/// Probes the records account for: one per record of its own, plus the
/// count each summary carries.
fn accounted(records: &[AuditRecord]) -> u64 {
    records
        .iter()
        .map(|r| {
            r.params
                .get("reset_probes")
                .map_or(1, |n| n.as_u64().unwrap())
        })
        .sum()
}

#[test]
fn a_reset_loop_is_one_record_and_one_summary_that_account_for_every_probe() {
    require_root_or_skip!();
    let w = World::start(ALLOWED_TEST_ONLY).unwrap();
    let ip = w.ns.v4().to_string();
    const N: u64 = 300;
    let out = w
        .python("bot", RESET_LOOP, &[&ip, "7001", &N.to_string()])
        .unwrap();
    assert_eq!(stdout(&out).trim(), N.to_string(), "{}", show(&out));
    // Another destination, a few probes: its own burst.
    let v6 = w.ns.v6().to_string();
    let out = w.python("bot", RESET_LOOP, &[&v6, "7002", "3"]).unwrap();
    assert_eq!(stdout(&out).trim(), "3", "{}", show(&out));

    // Bursts end 2 s after their last probe; summaries are written each second.
    let until = Instant::now() + Duration::from_secs(15);
    let recs = loop {
        let recs = probe_records(&w, 7001);
        if accounted(&recs) >= N || Instant::now() > until {
            break recs;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(accounted(&recs), N, "{recs:#?}");
    let own = recs
        .iter()
        .filter(|r| r.params.get("reset_probes").is_none())
        .count();
    assert!(own <= 3, "{own} records of their own for {N} probes");
    assert!(recs.iter().all(|r| verdict(r) == "deny"), "{recs:#?}");
    let summary = recs
        .iter()
        .find(|r| r.params.get("reset_probes").is_some())
        .expect("a summary record");
    assert_eq!(summary.params["ip"], json!(ip));
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap()
            .contains("nothing was forwarded")
    );

    let until = Instant::now() + Duration::from_secs(15);
    let other = loop {
        let recs = probe_records(&w, 7002);
        if accounted(&recs) >= 3 || Instant::now() > until {
            break recs;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(accounted(&other), 3, "{other:#?}");
    assert!(
        other.iter().any(|r| r.params.get("reset_probes").is_none()),
        "the second destination's first probe has its own record: {other:#?}"
    );
    // The trail still verifies with the summaries in it.
    let verify = w.daemon.cordon(&["audit", "verify"]).unwrap();
    assert!(verify.status.success(), "{}", show(&verify));
}
