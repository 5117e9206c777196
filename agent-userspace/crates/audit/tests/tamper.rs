//! Tampering with the stored records is caught by `verify`, which names the first bad seq.

mod common;

use std::sync::Arc;

use common::{RECORDS, action_record, open_db, open_log, temp_db};
use cordon_audit::{AuditConfig, Decision, ProblemKind, record_hash, verify};
use redb::Database;
use serde_json::{Map, Value};

/// A database holding records 1..=10.
fn ten_records() -> (common::TempDb, Arc<Database>) {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    for i in 0..10 {
        let d = if i % 2 == 0 {
            Decision::Deny
        } else {
            Decision::Allow
        };
        log.append_blocking(action_record("t", i, d))
            .expect("append");
    }
    log.shutdown().expect("shutdown");
    assert!(verify(&db).expect("verify").is_ok());
    (tmp, db)
}

fn read(db: &Database, seq: u64) -> Map<String, Value> {
    let txn = redb::ReadableDatabase::begin_read(db).expect("read");
    let table = txn.open_table(RECORDS).expect("table");
    let bytes = table
        .get(seq)
        .expect("get")
        .expect("present")
        .value()
        .to_vec();
    match serde_json::from_slice(&bytes).expect("json") {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn write(db: &Database, seq: u64, map: &Map<String, Value>) {
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(RECORDS).expect("table");
        let bytes = serde_json::to_vec(map).expect("json");
        table.insert(seq, bytes.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

fn delete(db: &Database, seq: u64) {
    let txn = db.begin_write().expect("write");
    txn.open_table(RECORDS)
        .expect("table")
        .remove(seq)
        .expect("remove");
    txn.commit().expect("commit");
}

fn problem(db: &Database) -> (u64, ProblemKind) {
    let report = verify(db).expect("verify");
    let p = report.problem.expect("tampering not detected");
    (p.seq, p.kind)
}

#[test]
fn edited_field_is_reported_as_hash_mismatch_at_that_seq() {
    let (_tmp, db) = ten_records();
    let mut rec = read(&db, 5);
    assert_eq!(rec["decision"], "deny");
    rec.insert("decision".into(), Value::from("allow"));
    write(&db, 5, &rec);
    assert_eq!(problem(&db), (5, ProblemKind::HashMismatch));
}

#[test]
fn edited_and_rehashed_record_breaks_the_next_link() {
    let (_tmp, db) = ten_records();
    let mut rec = read(&db, 5);
    rec.insert("rule".into(), Value::from("allow-everything"));
    let hash = record_hash(&rec);
    rec.insert("hash".into(), Value::from(hash));
    write(&db, 5, &rec);
    assert_eq!(problem(&db), (6, ProblemKind::PrevHashMismatch));
}

#[test]
fn deleted_record_is_reported_as_gap_at_its_seq() {
    let (_tmp, db) = ten_records();
    delete(&db, 4);
    assert_eq!(problem(&db), (4, ProblemKind::Gap));
}

#[test]
fn swapped_records_are_reported_at_the_first_swapped_seq() {
    let (_tmp, db) = ten_records();
    let (a, b) = (read(&db, 3), read(&db, 7));
    write(&db, 3, &b);
    write(&db, 7, &a);
    assert_eq!(problem(&db), (3, ProblemKind::SeqMismatch));
}

#[test]
fn swapped_records_with_rewritten_seqs_break_the_chain() {
    let (_tmp, db) = ten_records();
    let (mut a, mut b) = (read(&db, 3), read(&db, 4));
    // A careful forger also fixes the seq fields and each record's own hash.
    a.insert("seq".into(), Value::from(4));
    b.insert("seq".into(), Value::from(3));
    for rec in [&mut a, &mut b] {
        let hash = record_hash(rec);
        rec.insert("hash".into(), Value::from(hash));
    }
    write(&db, 3, &b);
    write(&db, 4, &a);
    assert_eq!(problem(&db), (3, ProblemKind::PrevHashMismatch));
}

#[test]
fn cut_off_tail_is_reported_as_truncated() {
    let (_tmp, db) = ten_records();
    delete(&db, 10);
    assert_eq!(problem(&db), (10, ProblemKind::Truncated));
}

#[test]
fn reopening_on_a_tampered_tail_refuses_to_extend_it() {
    let (_tmp, db) = ten_records();
    let mut rec = read(&db, 10);
    rec.insert("agent".into(), Value::from("someone-else"));
    write(&db, 10, &rec);
    match cordon_audit::AuditLog::open(db, AuditConfig::default()) {
        Err(cordon_audit::AuditError::TamperedHead { seq: 10 }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened on top of a tampered record"),
    }
}

#[test]
fn untouched_log_verifies_and_reports_its_tip() {
    let (_tmp, db) = ten_records();
    let report = verify(&db).expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.checked, 10);
    let tip = report.last_good.expect("tip");
    assert_eq!(tip.seq, 10);
    assert_eq!(tip.hash, read(&db, 10)["hash"]);
}

#[test]
fn empty_database_verifies() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let report = verify(&db).expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.checked, 0);
}
