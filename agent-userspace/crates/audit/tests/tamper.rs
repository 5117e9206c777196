//! Tampering with the stored records is caught by `verify`, which names the first bad seq.

mod common;

use std::sync::Arc;

use common::{
    CHUNKS, LEGACY_RECORDS, action_record, open_db, open_log, raw_records, replace_records,
    temp_db, write_raw,
};
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
    let records = raw_records(db);
    let (_, bytes) = records.iter().find(|(s, _)| *s == seq).expect("present");
    match serde_json::from_slice(bytes).expect("json") {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn write(db: &Database, seq: u64, map: &Map<String, Value>) {
    let mut records = raw_records(db);
    let slot = records
        .iter_mut()
        .find(|(s, _)| *s == seq)
        .expect("present");
    slot.1 = serde_json::to_vec(map).expect("json");
    write_raw(db, &records);
}

fn delete(db: &Database, seq: u64) {
    let mut records = raw_records(db);
    records.retain(|(s, _)| *s != seq);
    write_raw(db, &records);
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

#[test]
fn a_chunk_cut_inside_a_record_is_reported_as_malformed_at_that_seq() {
    let (_tmp, db) = ten_records();
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(CHUNKS).expect("chunks");
        // The chunk holding record 7: the last one starting at or before it.
        let (first, mut value) = {
            let (k, v) = redb::ReadableTable::range(&table, ..=7u64)
                .expect("range")
                .next_back()
                .expect("a chunk")
                .expect("read");
            (k.value(), v.value().to_vec())
        };
        // Keep the frames of the records before 7 and half of record 7.
        let mut at = 0;
        for _ in first..7 {
            let len = u32::from_le_bytes(value[at..at + 4].try_into().expect("len")) as usize;
            at += 4 + len;
        }
        value.truncate(at + 20);
        table.insert(first, value.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
    let report = verify(&db).expect("verify");
    let p = report.problem.expect("a cut chunk is not detected");
    assert_eq!((p.seq, p.kind), (7, ProblemKind::Malformed), "{}", p.detail);
    assert_eq!(report.checked, 6);
    assert_eq!(report.last_good.map(|g| g.seq), Some(6));
}

#[test]
fn a_trail_stored_one_record_per_entry_moves_into_chunks_and_still_catches_an_edit() {
    let (tmp, db) = ten_records();
    // The layout before chunks, as an older daemon left it, with record 5 edited.
    let mut records = raw_records(&db);
    let mut edited: Map<String, Value> = serde_json::from_slice(&records[4].1).expect("json");
    edited.insert("decision".into(), Value::from("allow"));
    records[4].1 = serde_json::to_vec(&edited).expect("json");
    replace_records(&db, LEGACY_RECORDS, &records);
    drop(db);
    let db = open_db(&tmp.path);

    let log = open_log(&db, AuditConfig::default());
    assert_eq!(raw_records(&db), records, "moved byte for byte");
    let txn = redb::ReadableDatabase::begin_read(&*db).expect("read");
    assert!(
        txn.open_table(LEGACY_RECORDS).is_err(),
        "the old table is gone"
    );
    drop(txn);
    assert_eq!(problem(&db), (5, ProblemKind::HashMismatch));
    assert_eq!(
        log.append_blocking(action_record("t", 10, Decision::Allow))
            .expect("the chain continues"),
        11
    );
    log.shutdown().expect("shutdown");
}
