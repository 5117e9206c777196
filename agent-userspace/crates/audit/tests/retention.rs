//! Pruning keeps a checkpoint so the remaining chain still verifies.

mod common;

use std::time::Duration;

use common::{
    CHUNKS, action_record, open_db, open_log, raw_records, stored_seqs, temp_db, write_raw,
};
use cordon_audit::{AuditConfig, Decision, Retention, prune, verify};
use redb::ReadableTableMetadata;

fn policy(max_age: Option<Duration>, max_size_bytes: Option<u64>) -> Retention {
    Retention {
        max_age,
        max_size_bytes,
        check_interval: Duration::from_secs(3600),
    }
}

#[test]
fn age_pruning_keeps_verify_passing_and_appends_continue() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..20 {
        log.append_blocking(action_record("r", i, Decision::Allow))
            .expect("append");
    }
    // "now" one hour ahead makes all 20 older than 30 minutes.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let report = prune(&db, &policy(Some(Duration::from_secs(1800)), None), later).expect("prune");
    assert_eq!(report.pruned, 20);
    let cp = report.checkpoint.expect("checkpoint");
    assert_eq!(cp.seq, 20);
    assert!(stored_seqs(&db).is_empty());
    assert!(verify(&db).expect("verify").is_ok());

    // The chain continues from the checkpoint, across a reopen too.
    for i in 0..5 {
        log.append_blocking(action_record("r", i, Decision::Deny))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    // The handle keeps the database open until it is dropped.
    drop(log);
    drop(db);
    let path = tmp.path.clone();
    let db = open_db(&path);
    let log = open_log(&db, AuditConfig::default());
    assert_eq!(
        log.append_blocking(action_record("r", 99, Decision::Allow))
            .expect("append"),
        26
    );
    log.shutdown().expect("shutdown");
    assert_eq!(stored_seqs(&db), (21..=26).collect::<Vec<_>>());
    let v = verify(&db).expect("verify");
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.checkpoint.map(|c| c.seq), Some(20));
    assert_eq!(v.checked, 6);
}

#[test]
fn young_records_survive_age_pruning() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..5 {
        log.append_blocking(action_record("r", i, Decision::Allow))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    let report = prune(
        &db,
        &policy(Some(Duration::from_secs(3600)), None),
        chrono::Utc::now(),
    )
    .expect("prune");
    assert_eq!(report.pruned, 0);
    assert!(report.checkpoint.is_none());
    assert_eq!(stored_seqs(&db).len(), 5);
}

#[test]
fn size_pruning_removes_oldest_until_under_the_limit() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..50 {
        log.append_blocking(action_record("r", i, Decision::Allow))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    let stored_bytes = || {
        let txn = redb::ReadableDatabase::begin_read(&*db).expect("read");
        let t = txn.open_table(CHUNKS).expect("table");
        t.stats().expect("stats").stored_bytes()
    };
    let before = stored_bytes();
    let limit = before / 2;
    let report = prune(&db, &policy(None, Some(limit)), chrono::Utc::now()).expect("prune");
    assert!(report.pruned > 0 && report.pruned < 50, "{report:?}");
    assert!(stored_bytes() <= limit, "{} > {limit}", stored_bytes());
    let seqs = stored_seqs(&db);
    assert_eq!(
        seqs.first().copied(),
        Some(report.pruned + 1),
        "oldest go first"
    );
    assert_eq!(seqs.last().copied(), Some(50));
    assert!(verify(&db).expect("verify").is_ok());
}

#[test]
fn pruning_refuses_to_erase_a_tampered_record() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..5 {
        log.append_blocking(action_record("r", i, Decision::Allow))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    let mut records = raw_records(&db);
    records.retain(|(seq, _)| *seq != 2);
    write_raw(&db, &records);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let err = prune(&db, &policy(Some(Duration::from_secs(60)), None), later)
        .expect_err("pruning over a gap must fail");
    assert!(err.to_string().contains("Gap"), "{err}");
    assert_eq!(stored_seqs(&db), vec![1, 3, 4, 5], "nothing was pruned");
}

#[test]
fn writer_applies_retention_on_its_own() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let cfg = AuditConfig {
        retention: Some(Retention {
            max_age: None,
            max_size_bytes: Some(1),
            check_interval: Duration::from_millis(20),
        }),
        ..AuditConfig::default()
    };
    let log = open_log(&db, cfg);
    for i in 0..5 {
        log.append_blocking(action_record("r", i, Decision::Allow))
            .expect("append");
    }
    let started = std::time::Instant::now();
    while log.metrics().pruned_total < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "writer never pruned"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    log.shutdown().expect("shutdown");
    assert!(verify(&db).expect("verify").is_ok());
}
