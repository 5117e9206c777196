//! Layout of the audit tables inside the shared redb database, and record encoding.
//!
//! `audit_chunks`: runs of consecutive records, each record the canonical JSON bytes hashed into
//! the chain (hash included); see `chunks.rs`.
//! `audit_meta`: "head" -> {seq, hash} of the newest record, written in the same transaction
//! as the records (lets verify notice a truncated tail); "checkpoint" -> the last pruned record.

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, TableError,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::canonical::{GENESIS_HASH, record_hash};
use crate::chunks::{CHUNKS, ChunkWriter, insert_all, last_record, migrate_legacy, records_from};
use crate::encoded::Encoded;
use crate::error::{AuditError, DbContext};
use crate::record::AuditRecord;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_meta");
pub(crate) const META_HEAD: &str = "head";
pub(crate) const META_CHECKPOINT: &str = "checkpoint";
/// `{seq}`: the head when the writer last stopped on request (a clean daemon stop).
pub(crate) const META_CLEAN_STOP: &str = "clean_stop";
/// `{seq, off}`: decisions up to here have their outcome (or were given one at a start);
/// `off`: the run that started there records no outcomes, so its decisions expect none.
pub(crate) const META_OUTCOMES: &str = "outcomes";

/// A position in the chain: a record's seq and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPoint {
    pub seq: u64,
    pub hash: String,
}

impl ChainPoint {
    pub(crate) fn genesis() -> ChainPoint {
        ChainPoint {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }
}

/// Left behind by retention: the last record that was pruned. Verification resumes from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    /// `ts` of the pruned record.
    pub ts: String,
    /// When the prune ran.
    pub pruned_at: String,
}

pub(crate) fn corrupt(key: u64, reason: impl std::fmt::Display) -> AuditError {
    AuditError::Corrupt {
        table: "audit_chunks",
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn decode(key: u64, bytes: &[u8]) -> Result<AuditRecord, AuditError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))
}

pub(crate) fn decode_map(key: u64, bytes: &[u8]) -> Result<Map<String, Value>, AuditError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(corrupt(key, "stored value is not a JSON object")),
        Err(e) => Err(corrupt(key, e)),
    }
}

pub(crate) type RecordsTable = ReadOnlyTable<u64, &'static [u8]>;
pub(crate) type MetaTable = ReadOnlyTable<&'static str, &'static [u8]>;

/// The records table, or `None` when nothing was ever appended to this database.
pub(crate) fn open_records(txn: &ReadTransaction) -> Result<Option<RecordsTable>, AuditError> {
    match txn.open_table(CHUNKS) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e).ctx("open audit_chunks"),
    }
}

/// Creates the audit tables if needed and moves records kept in the layout before chunks into
/// chunks (`chunks::migrate_legacy`), in one transaction.
pub(crate) fn prepare(db: &Database) -> Result<(), AuditError> {
    let txn = db.begin_write().ctx("begin audit setup")?;
    let moved = migrate_legacy(&txn)?;
    txn.open_table(CHUNKS).ctx("create audit_chunks")?;
    txn.open_table(META).ctx("create audit_meta")?;
    txn.commit().ctx("commit audit setup")?;
    if moved > 0 {
        tracing::info!(records = moved, "audit records moved into chunks");
    }
    Ok(())
}

pub(crate) fn open_meta(txn: &ReadTransaction) -> Result<Option<MetaTable>, AuditError> {
    match txn.open_table(META) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e).ctx("open audit_meta"),
    }
}

pub(crate) fn get_meta<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &'static str,
) -> Result<Option<T>, AuditError> {
    let Some(guard) = table.get(key).ctx("read audit_meta")? else {
        return Ok(None);
    };
    serde_json::from_slice(guard.value())
        .map(Some)
        .map_err(|e| AuditError::Corrupt {
            table: "audit_meta",
            key: key.to_string(),
            reason: e.to_string(),
        })
}

/// Inserts records and moves the stored head to `tip`, in one transaction.
pub(crate) fn insert_records(
    db: &Database,
    records: &Encoded,
    tip: &ChainPoint,
    durability: Durability,
    chunks: &mut ChunkWriter,
) -> Result<(), AuditError> {
    let mut txn = db.begin_write().ctx("begin audit write")?;
    txn.set_durability(durability)
        .ctx("set audit write durability")?;
    {
        let mut table = txn.open_table(CHUNKS).ctx("open audit_chunks")?;
        insert_all(&mut table, chunks, records.iter())?;
        let mut meta = txn.open_table(META).ctx("open audit_meta")?;
        meta.insert(META_HEAD, meta_bytes(tip)?.as_slice())
            .ctx("update audit head")?;
    }
    txn.commit().ctx("commit audit records")
}

pub(crate) fn meta_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, AuditError> {
    serde_json::to_vec(value).map_err(AuditError::Serialize)
}

/// Where the next append continues the chain: the newest record (whose own hash is checked),
/// else the retention checkpoint, else genesis.
pub(crate) fn read_head(db: &Database) -> Result<ChainPoint, AuditError> {
    read_tip(db, true)
}

/// The newest record's seq and the hash it claims, unchecked: recovery links the write-ahead
/// log onto what is stored and leaves judging the stored records to `verify`.
pub(crate) fn read_claimed_head(db: &Database) -> Result<ChainPoint, AuditError> {
    read_tip(db, false)
}

fn read_tip(db: &Database, check: bool) -> Result<ChainPoint, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    if let Some(records) = open_records(&txn)?
        && let Some((seq, bytes)) = last_record(&records)?
    {
        let map = decode_map(seq, &bytes)?;
        let stored = map.get("hash").and_then(Value::as_str).unwrap_or_default();
        if check && record_hash(&map) != stored {
            return Err(AuditError::TamperedHead { seq });
        }
        return Ok(ChainPoint {
            seq,
            hash: stored.to_string(),
        });
    }
    if let Some(meta) = open_meta(&txn)?
        && let Some(cp) = get_meta::<Checkpoint>(&meta, META_CHECKPOINT)?
    {
        return Ok(ChainPoint {
            seq: cp.seq,
            hash: cp.hash,
        });
    }
    Ok(ChainPoint::genesis())
}

/// A seq kept under an `audit_meta` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeqMark {
    pub seq: u64,
    /// Only on the `outcomes` mark: see `META_OUTCOMES`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub off: bool,
}

pub(crate) fn read_mark(db: &Database, key: &'static str) -> Result<Option<SeqMark>, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    match open_meta(&txn)? {
        Some(meta) => get_meta(&meta, key),
        None => Ok(None),
    }
}

pub(crate) fn write_mark(db: &Database, key: &'static str, seq: u64) -> Result<(), AuditError> {
    write_seq_mark(db, key, SeqMark { seq, off: false })
}

pub(crate) fn write_seq_mark(
    db: &Database,
    key: &'static str,
    mark: SeqMark,
) -> Result<(), AuditError> {
    let txn = db.begin_write().ctx("begin audit meta write")?;
    {
        let mut meta = txn.open_table(META).ctx("open audit_meta")?;
        meta.insert(key, meta_bytes(&mark)?.as_slice())
            .ctx("write audit meta mark")?;
    }
    txn.commit().ctx("commit audit meta mark")
}

pub(crate) fn mark_clean_stop(db: &Database, head: &ChainPoint) -> Result<(), AuditError> {
    write_mark(db, META_CLEAN_STOP, head.seq)
}

/// A stored record: its seq and its JSON object.
pub(crate) type Stored = (u64, Map<String, Value>);

/// Up to `max` stored records from `seq` on, oldest first.
pub(crate) fn stored_from(db: &Database, seq: u64, max: usize) -> Result<Vec<Stored>, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    let Some(records) = open_records(&txn)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(max.min(1024));
    for entry in records_from(&records, seq)?.take(max) {
        let (seq, bytes) = entry?;
        out.push((seq, decode_map(seq, &bytes)?));
    }
    Ok(out)
}
