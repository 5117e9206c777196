//! With a write-ahead log, appenders are answered once the log holds their record and redb
//! is filled later, in larger transactions. These tests hold that path to its promises:
//! readers that wait for `settled` see every acknowledged record, and a failing redb loses
//! nothing and admits nothing new until it works again.
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{action_record, open_log, stored_seqs, temp_db};
use cordon_audit::{AuditConfig, AuditError, AuditLog, Decision, Durability, Health, verify};
use redb::TableDefinition;

fn with_wal(dir: &std::path::Path) -> AuditConfig {
    AuditConfig {
        durability: Durability::Strict,
        wal: Some(dir.join("audit.wal")),
        ..AuditConfig::default()
    }
}

fn settle(log: &AuditLog) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(log.settled());
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn with_a_log_every_acknowledged_record_is_readable_once_settled() {
    let tmp = temp_db();
    let db = common::open_db(&tmp.path);
    let log = Arc::new(open_log(&db, with_wal(tmp.dir.path())));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..50u64)
                    .map(|i| {
                        log.append_blocking(action_record("w", t * 50 + i, Decision::Allow))
                            .expect("append")
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut acked: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("appender thread"))
        .collect();
    acked.sort_unstable();
    settle(&log);
    let stored = stored_seqs(&db);
    assert_eq!(
        stored, acked,
        "settled readers see exactly the acknowledged records"
    );
    assert_eq!(stored, (1..=200).collect::<Vec<u64>>());
    assert!(verify(&db).expect("verify").is_ok());
}

/// A table of the wrong type where the writer keeps its head: every index write fails
/// (redb aborts the whole transaction) until it is removed, like a database that turned bad.
const BAD_META: TableDefinition<u64, u64> = TableDefinition::new("audit_meta");

#[test]
fn with_a_log_a_failing_index_write_refuses_new_records_and_loses_none() {
    let tmp = temp_db();
    let db = common::open_db(&tmp.path);
    let log = open_log(&db, with_wal(tmp.dir.path()));
    assert_eq!(
        log.append_blocking(action_record("i", 0, Decision::Allow))
            .expect("first append"),
        1
    );
    settle(&log);

    let txn = db.begin_write().expect("begin");
    txn.delete_table(BAD_META).expect("drop audit_meta");
    txn.open_table(BAD_META).expect("wrong-typed audit_meta");
    txn.commit().expect("commit");

    // The log still works: the record is kept (acknowledged from the log) ...
    assert_eq!(
        log.append_blocking(action_record("i", 1, Decision::Deny))
            .expect("the log holds it"),
        2
    );
    // ... and once its redb insert fails, nothing new is admitted.
    wait_for("the index failure", || {
        matches!(log.health(), Health::Failed { .. })
    });
    match log.append_blocking(action_record("i", 2, Decision::Allow)) {
        Err(AuditError::Unavailable { reason, .. }) => {
            assert!(reason.contains("audit_meta"), "{reason}");
        }
        other => panic!("expected Unavailable while redb fails, got {other:?}"),
    }

    // redb recovers: the retry inserts seq 2, and records are admitted again.
    let txn = db.begin_write().expect("begin");
    txn.delete_table(BAD_META).expect("drop the bad table");
    txn.commit().expect("commit");
    wait_for("recovery", || log.health().is_healthy());
    assert_eq!(
        log.append_blocking(action_record("i", 3, Decision::Allow))
            .expect("append after recovery"),
        3
    );
    settle(&log);
    assert_eq!(stored_seqs(&db), [1, 2, 3]);
    assert!(verify(&db).expect("verify").is_ok());
    log.shutdown().expect("clean shutdown");
}

fn outcome_of(seq: u64) -> cordon_audit::Outcome {
    cordon_audit::Outcome {
        status: Some(200),
        ..cordon_audit::Outcome::new(seq, cordon_audit::OutcomeState::Completed)
    }
}

#[test]
fn an_outcome_nobody_waits_on_shares_the_next_awaited_records_sync() {
    let tmp = temp_db();
    let db = common::open_db(&tmp.path);
    let log = open_log(&db, with_wal(tmp.dir.path()));
    let rounds = 40;
    for i in 0..rounds {
        let seq = log
            .append_blocking(action_record("bot", i, Decision::Allow))
            .expect("decision");
        // Written at once, on this thread; the next decision's sync covers it.
        log.append_outcome(outcome_of(seq));
    }
    log.append_blocking(action_record("bot", rounds, Decision::Allow))
        .expect("last decision");
    let syncs = log.metrics().wal_syncs_total;
    // One sync per awaited decision; an outcome's own sync happens only when the index
    // insert (every 20 ms at most) finds it still unsynced, which a slow machine may see a
    // few times. Syncing every group would be twice the rounds.
    assert!(
        syncs > rounds && syncs <= rounds + 1 + rounds / 4,
        "{syncs} syncs for {} awaited records",
        rounds + 1
    );
    log.shutdown().expect("shutdown");
    verify(&db).expect("chain verifies");
    assert_eq!(stored_seqs(&db).len() as u64, 2 * rounds + 1);
}

#[test]
fn an_unawaited_record_is_synced_before_any_reader_can_see_it() {
    let tmp = temp_db();
    let db = common::open_db(&tmp.path);
    let log = open_log(&db, with_wal(tmp.dir.path()));
    let seq = log
        .append_blocking(action_record("bot", 1, Decision::Allow))
        .expect("decision");
    settle(&log);
    let before = log.metrics().wal_syncs_total;
    log.append_outcome(outcome_of(seq));
    let committed = log.subscribe();
    wait_for("the outcome to reach redb", || *committed.borrow() > seq);
    assert_eq!(
        log.metrics().wal_syncs_total,
        before + 1,
        "the outcome became readable without its own sync"
    );
}
