//! Pruning old records without breaking verification: the last pruned record's seq and hash
//! are kept as a checkpoint that verification starts from.

use chrono::{DateTime, Utc};
use redb::{Database, ReadableTable, ReadableTableMetadata};
use serde_json::Value;

use crate::canonical::GENESIS_HASH;
use crate::chunks::{self, CHUNKS, ChunkWriter};
use crate::config::Retention;
use crate::error::{AuditError, DbContext};
use crate::record::format_ts;
use crate::store::{Checkpoint, META, META_CHECKPOINT, decode_map, get_meta, meta_bytes};
use crate::verify::check_one;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    pub pruned: u64,
    /// Bytes removed from `audit_chunks`: each pruned record's frame, and the key of each chunk
    /// removed whole (the file's pages are reused, not returned to the OS).
    pub bytes_freed: u64,
    /// The checkpoint now in force (unchanged if nothing was pruned).
    pub checkpoint: Option<Checkpoint>,
}

/// Removes the oldest records that are older than `policy.max_age` or that push the table past
/// `policy.max_size_bytes`, in one transaction, and records the checkpoint.
///
/// Each record is chain-checked before it is removed; a broken one stops pruning with an error
/// so evidence of tampering is never pruned away.
pub fn prune(
    db: &Database,
    policy: &Retention,
    now: DateTime<Utc>,
) -> Result<PruneReport, AuditError> {
    let cutoff = policy
        .max_age
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| now - age);
    let txn = db.begin_write().ctx("begin audit prune")?;
    let report = {
        let mut records = txn.open_table(CHUNKS).ctx("open audit_chunks")?;
        let mut writer = ChunkWriter::default();
        let mut meta = txn.open_table(META).ctx("open audit_meta")?;
        let old_cp: Option<Checkpoint> = get_meta(&meta, META_CHECKPOINT)?;
        let excess = match policy.max_size_bytes {
            Some(max) => {
                let stats = records.stats().ctx("audit_chunks stats")?;
                stats.stored_bytes().saturating_sub(max)
            }
            None => 0,
        };
        let mut expected_seq = old_cp.as_ref().map_or(1, |c| c.seq + 1);
        let mut expected_prev = old_cp
            .as_ref()
            .map_or_else(|| GENESIS_HASH.to_string(), |c| c.hash.clone());
        let mut freed = 0u64;
        let mut pruned = 0u64;
        let mut last: Option<Checkpoint> = None;
        loop {
            let (first, value) = match records.first().ctx("read oldest audit chunk")? {
                Some((k, v)) => (k.value(), v.value().to_vec()),
                None => break,
            };
            let mut kept = None;
            for entry in chunks::records(first, &value) {
                let (seq, bytes) = entry?;
                let map = decode_map(seq, bytes)?;
                let ts_text = map.get("ts").and_then(Value::as_str).unwrap_or_default();
                let ts = DateTime::parse_from_rfc3339(ts_text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| crate::store::corrupt(seq, format!("ts `{ts_text}`: {e}")))?;
                let too_old = cutoff.is_some_and(|c| ts < c);
                let too_big = freed < excess;
                if !too_old && !too_big {
                    kept = Some(seq);
                    break;
                }
                if let Some(p) = check_one(seq, bytes, expected_seq, &expected_prev) {
                    return Err(crate::store::corrupt(
                        p.seq,
                        format!(
                            "refusing to prune a broken chain ({:?}): {}",
                            p.kind, p.detail
                        ),
                    ));
                }
                let hash = map
                    .get("hash")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                freed += 4 + bytes.len() as u64;
                pruned += 1;
                expected_seq = seq + 1;
                expected_prev.clone_from(&hash);
                last = Some(Checkpoint {
                    seq,
                    hash,
                    ts: ts_text.to_string(),
                    pruned_at: format_ts(&now),
                });
            }
            if kept == Some(first) {
                break;
            }
            records.remove(first).ctx("remove audit chunk")?;
            let Some(from) = kept else {
                freed += 8;
                continue;
            };
            // The chunk's records from `from` on stay, as a chunk of their own (the ones
            // before it were read above).
            let pruned_here = usize::try_from(from - first).unwrap_or(usize::MAX);
            for entry in chunks::records(first, &value).skip(pruned_here) {
                let (seq, bytes) = entry?;
                writer.push(&mut records, seq, bytes)?;
            }
            writer.close(&mut records)?;
            break;
        }
        if let Some(cp) = &last {
            meta.insert(META_CHECKPOINT, meta_bytes(cp)?.as_slice())
                .ctx("write audit checkpoint")?;
        }
        PruneReport {
            pruned,
            bytes_freed: freed,
            checkpoint: last.or(old_cp),
        }
    };
    txn.commit().ctx("commit audit prune")?;
    Ok(report)
}
