//! Reading records back for `cordon audit tail`.

mod common;

use common::{action_record, open_db, open_log, temp_db};
use cordon_audit::{
    AuditConfig, AuditRecord, Decision, EventKind, Filter, format_line, iter_from, query,
    to_json_line,
};

fn seeded() -> (common::TempDb, std::sync::Arc<redb::Database>) {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..12 {
        let agent = if i % 3 == 0 { "writer" } else { "reader" };
        let d = if i % 2 == 0 {
            Decision::Deny
        } else {
            Decision::Allow
        };
        log.append_blocking(action_record(agent, i, d))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    (tmp, db)
}

fn collect(
    it: impl Iterator<Item = Result<AuditRecord, cordon_audit::AuditError>>,
) -> Vec<AuditRecord> {
    it.map(|r| r.expect("record")).collect()
}

#[test]
fn iter_from_starts_at_the_given_seq() {
    let (_tmp, db) = seeded();
    let seqs: Vec<u64> = collect(iter_from(&db, 10).expect("iter"))
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![10, 11, 12]);
}

#[test]
fn filter_by_agent_and_decision() {
    let (_tmp, db) = seeded();
    let filter = Filter {
        agent: Some("writer".into()),
        decision: Some(Decision::Deny),
        ..Filter::default()
    };
    let got = collect(query(&db, 1, filter).expect("query"));
    // i = 0, 6 are writer (i % 3 == 0) and deny (even): seqs 1 and 7.
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 7]);
    assert!(
        got.iter()
            .all(|r| r.agent.as_deref() == Some("writer") && r.decision == Some(Decision::Deny))
    );
}

#[test]
fn filter_by_time_range_and_kind() {
    let (_tmp, db) = seeded();
    let all = collect(iter_from(&db, 1).expect("iter"));
    let filter = Filter {
        since: Some(all[3].ts),
        until: Some(all[6].ts),
        kind: Some(EventKind::Request),
        ..Filter::default()
    };
    let got: Vec<u64> = collect(query(&db, 1, filter).expect("query"))
        .iter()
        .map(|r| r.seq)
        .collect();
    assert!(got.first() == Some(&4), "{got:?}");
    assert!(got.iter().all(|s| (4..7).contains(s)), "{got:?}");
    let none = Filter {
        kind: Some(EventKind::DnsQuery),
        ..Filter::default()
    };
    assert!(collect(query(&db, 1, none).expect("query")).is_empty());
}

#[test]
fn records_round_trip_with_microsecond_utc_timestamps() {
    let (_tmp, db) = seeded();
    let first = collect(iter_from(&db, 1).expect("iter")).remove(0);
    let json = to_json_line(&first).expect("json");
    let ts = serde_json::from_str::<serde_json::Value>(&json).expect("json")["ts"]
        .as_str()
        .expect("ts")
        .to_string();
    // 2025-05-01T12:00:00.123456Z
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z'), "{ts}");
    let back: AuditRecord = serde_json::from_str(&json).expect("parse back");
    assert_eq!(back, first);
}

#[test]
fn one_line_format_names_who_what_and_why() {
    let (_tmp, db) = seeded();
    let first = collect(iter_from(&db, 1).expect("iter")).remove(0);
    let line = format_line(&first);
    assert!(line.starts_with("#1 "), "{line}");
    for part in [
        "DENY",
        "request",
        "writer[orchestrator/writer]",
        "github.branch.delete",
        "rule=protect-main",
        "policy=v7",
        "\"branch\":\"feature-0\"",
    ] {
        assert!(line.contains(part), "`{part}` missing from {line}");
    }
    assert!(!line.contains('\n'));
    assert!(!line.contains("would="), "{line}");
}

#[test]
fn one_line_format_says_what_learn_mode_would_have_done() {
    let (_tmp, db) = seeded();
    let mut rec = collect(iter_from(&db, 1).expect("iter")).remove(0);
    rec.record.decision = Some(Decision::Allow);
    rec.record.would = Some(cordon_audit::Would::Deny);
    let line = format_line(&rec);
    assert!(line.contains("ALLOW request"), "{line}");
    assert!(line.contains("rule=protect-main would=deny"), "{line}");
}
