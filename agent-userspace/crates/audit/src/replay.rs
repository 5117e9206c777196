//! Recovery from the write-ahead log (`wal.rs`): records it holds that no durable redb commit
//! does are checked link by link and committed, once, at open (and by the offline CLI).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use redb::Database;
use serde_json::Value;

use crate::canonical::record_hash;
use crate::chunks::{CHUNKS, ChunkWriter, insert_all};
use crate::error::{AuditError, DbContext};
use crate::store::{
    ChainPoint, META, META_HEAD, decode_map, meta_bytes, prepare, read_claimed_head,
};
use crate::wal::{HEADER, io_err};

/// The intact frames at the start of `data`, in file order.
fn frames(data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = vec![];
    let mut at = 0usize;
    while at + HEADER <= data.len() {
        let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let len = word(at) as usize;
        let crc = word(at + 4);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&data[at + 8..at + 16]);
        let seq = u64::from_le_bytes(seq_bytes);
        let end = at + HEADER + len;
        if len == 0 || end > data.len() {
            break;
        }
        let body = &data[at + HEADER..end];
        let mut h = crc32fast::Hasher::new();
        h.update(&seq_bytes);
        h.update(body);
        if h.finalize() != crc {
            break;
        }
        out.push((seq, body));
        at = end;
    }
    out
}

/// What [`replay`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Records that were only in the WAL and are now in the database (durably).
    pub applied: u64,
    pub tip: ChainPoint,
}

/// Moves records that reached the WAL but not a durable redb commit (the daemon stopped
/// without a checkpoint) into the database, checking each chain link. Safe to run any number
/// of times; a missing file is an empty log.
///
/// Frames are read from the start of each half (and, from the file's start, across the whole
/// file, as logs written in one pass before the halves were read). Each seq after the
/// database's tip is looked for in both; the copy that continues the chain is applied, and a
/// seq whose only copies do not is an error, never skipped. The first seq found nowhere ends
/// the log.
pub fn replay(db: &Database, path: &Path) -> Result<Replayed, AuditError> {
    // The tip the log continues from is read from chunks: an older layout moves first.
    prepare(db)?;
    let mut data = vec![];
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)
                .map_err(|e| io_err(path, "read", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, "open", e)),
    }
    let half = data.len() / 2;
    let mut found: BTreeMap<u64, Vec<&[u8]>> = BTreeMap::new();
    for (seq, body) in frames(&data).into_iter().chain(frames(&data[half..])) {
        found.entry(seq).or_default().push(body);
    }
    let mut tip = read_claimed_head(db)?;
    let mut apply: Vec<(u64, &[u8])> = vec![];
    while let Some(copies) = found.get(&(tip.seq + 1)) {
        let seq = tip.seq + 1;
        let mut next = None;
        for body in copies {
            let map = decode_map(seq, body)?;
            let claimed = map.get("hash").and_then(Value::as_str).unwrap_or_default();
            let prev = map
                .get("prev_hash")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prev == tip.hash && record_hash(&map) == claimed {
                next = Some((claimed.to_string(), *body));
                break;
            }
        }
        let Some((hash, body)) = next else {
            return Err(AuditError::Wal {
                path: path.to_path_buf(),
                reason: format!(
                    "record {seq} in the write-ahead log does not continue the chain at seq {}",
                    tip.seq
                ),
            });
        };
        tip = ChainPoint { seq, hash };
        apply.push((seq, body));
    }
    if !apply.is_empty() {
        let txn = db.begin_write().ctx("begin audit replay")?;
        {
            let mut records = txn.open_table(CHUNKS).ctx("open audit_chunks")?;
            let mut writer = ChunkWriter::default();
            insert_all(&mut records, &mut writer, apply.iter().copied())?;
            let mut meta = txn.open_table(META).ctx("open audit_meta")?;
            meta.insert(META_HEAD, meta_bytes(&tip)?.as_slice())
                .ctx("update audit head")?;
        }
        txn.commit().ctx("commit replayed records")?;
        tracing::warn!(
            applied = apply.len(),
            tip = tip.seq,
            "audit records recovered from the write-ahead log (the daemon stopped without a checkpoint)"
        );
    }
    Ok(Replayed {
        applied: apply.len() as u64,
        tip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Draft;
    use crate::encoded::Encoded;
    use crate::record::{NewRecord, now_micros};
    use crate::wal::{Wal, WriteError};
    use crate::{EventKind, verify};
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    fn chain(from: &ChainPoint, n: u64) -> Encoded {
        let (mut e, mut scratch) = (Encoded::default(), Draft::default());
        for seq in from.seq + 1..=from.seq + n {
            let mut r = NewRecord::new(EventKind::Request);
            r.action = Some(format!("http.request.{seq}"));
            e.push(seq, &now_micros(), &r, &from.hash, &mut scratch);
        }
        e
    }

    fn write(wal: &mut Wal, records: &Encoded) {
        for (seq, bytes) in records.iter() {
            assert!(wal.write(seq, bytes).is_ok(), "write {seq}");
        }
    }

    fn setup() -> (tempfile::TempDir, Database, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("a.redb")).expect("db");
        let wal = dir.path().join("audit.wal");
        (dir, db, wal)
    }

    fn tip(records: &Encoded) -> ChainPoint {
        records.tip().unwrap_or_else(ChainPoint::genesis)
    }

    #[test]
    fn records_only_in_the_wal_are_recovered_and_verify() {
        let (_d, db, path) = setup();
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        write(&mut wal, &chain(&ChainPoint::genesis(), 5));
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (5, 5));
        let report = verify(&db).expect("verify");
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!(report.checked, 5);
        // Again: nothing new, nothing doubled.
        assert_eq!(replay(&db, &path).expect("replay").applied, 0);
    }

    #[test]
    fn records_continue_from_one_half_into_the_other_and_a_freed_half_is_written_again() {
        let (_d, db, path) = setup();
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        let first = chain(&ChainPoint::genesis(), 3);
        write(&mut wal, &first);
        assert!(wal.switch(), "the other half is free");
        let second = chain(&tip(&first), 3);
        write(&mut wal, &second);
        assert!(!wal.switch(), "the first half waits for its checkpoint");
        // Recovery finds 1..=3 in the first half and 4..=6 in the second.
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (6, 6));
        // The first half is checkpointed (replay committed it): it is written again from its
        // start, over frames 1..=3, which recovery now skips.
        wal.freed();
        assert!(wal.switch());
        let third = chain(&tip(&second), 2);
        write(&mut wal, &third);
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (2, 8));
        assert!(verify(&db).expect("verify").problem.is_none());
    }

    #[test]
    fn a_full_half_moves_on_only_when_the_other_is_free() {
        let (_d, _db, path) = setup();
        let mut wal = Wal::open(&path, 4 * 1024).expect("open");
        let records = chain(&ChainPoint::genesis(), 40);
        let mut written = 0;
        for (seq, bytes) in records.iter() {
            match wal.write(seq, bytes) {
                Ok(()) => written += 1,
                Err(WriteError::Full) => break,
                Err(WriteError::Io(e)) => panic!("{e}"),
            }
        }
        assert!(wal.other_busy(), "it moved to the second half");
        assert!(written < 40, "both halves filled");
        assert!(wal.used() <= wal.half_len());
    }

    #[test]
    fn a_torn_tail_ends_the_log() {
        let (_d, db, path) = setup();
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        let first = chain(&ChainPoint::genesis(), 2);
        write(&mut wal, &first);
        let at = wal.used();
        write(&mut wal, &chain(&tip(&first), 1));
        // The third frame's write stopped partway: the rest is old bytes.
        wal.file_for_test()
            .write_all_at(&[0u8; 8], at + HEADER as u64 + 20)
            .expect("tear");
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (2, 2));
        assert!(verify(&db).expect("verify").problem.is_none());
    }

    #[test]
    fn a_frame_that_breaks_the_chain_is_an_error_not_a_silent_skip() {
        let (_d, db, path) = setup();
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        // Record 2 claims a predecessor other than record 1.
        let mut bad = chain(&ChainPoint::genesis(), 1);
        let stranger = ChainPoint {
            seq: 1,
            hash: "ab".repeat(32),
        };
        assert_ne!(bad.tip().expect("tip").hash, stranger.hash);
        bad.extend(&chain(&stranger, 1));
        write(&mut wal, &bad);
        let err = replay(&db, &path).expect_err("broken chain");
        assert!(
            err.to_string().contains("does not continue the chain"),
            "{err}"
        );
    }
}
