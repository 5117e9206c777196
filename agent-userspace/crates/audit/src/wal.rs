//! The audit write-ahead log: a fixed-size, pre-zeroed file the writer appends each group of
//! records to before they go into redb.
//!
//! Why: a durable redb commit rewrites several B-tree pages and fsyncs them (about 1 ms here);
//! an overwrite of already-allocated file blocks plus `fdatasync` needs no metadata journal and
//! costs a fraction of that. Records reach redb in non-durable commits (visible to readers at
//! once) and a durable redb commit every second, or when the file is full, checkpoints them,
//! after which the file is written from the start again.
//!
//! Frame: `len u32 | crc32 u32 | seq u64 | record bytes` (little endian; the CRC covers seq and
//! bytes). Replay reads frames from the start: frames at or below the database's tip are
//! skipped (already checkpointed, or left from an older pass over the file), the tip's
//! successor is applied after its chain link is checked, and anything else ends the log.
//! Stale frames from earlier passes always carry lower seqs than the pass that overwrote the
//! start of the file, so they can never be mistaken for new records.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use redb::Database;
use serde_json::Value;

use crate::canonical::record_hash;
use crate::encoded::Encoded;
use crate::error::{AuditError, DbContext};
use crate::store::{
    ChainPoint, META, META_HEAD, RECORDS, decode_map, meta_bytes, read_claimed_head,
};

/// Size of the file; a checkpoint resets the write position well before a busy second fills it.
pub const WAL_BYTES: u64 = 16 * 1024 * 1024;
const HEADER: usize = 16;

pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    offset: u64,
    capacity: u64,
    /// Reused for every group's frames: the writer allocates nothing per group here.
    buf: Vec<u8>,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> AuditError {
    AuditError::Wal {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

impl Wal {
    /// Opens (creating, 0600) and zero-fills the file to `capacity`, so later writes overwrite
    /// allocated blocks. Call [`replay`] first: writing starts at offset 0.
    pub fn open(path: &Path, capacity: u64) -> Result<Wal, AuditError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, "open", e))?;
        let len = file.metadata().map_err(|e| io_err(path, "stat", e))?.len();
        if len < capacity {
            let zeros = vec![0u8; 1024 * 1024];
            let mut at = len;
            while at < capacity {
                let n = zeros
                    .len()
                    .min(usize::try_from(capacity - at).unwrap_or(zeros.len()));
                file.write_all_at(&zeros[..n], at)
                    .map_err(|e| io_err(path, "zero-fill", e))?;
                at += n as u64;
            }
            file.sync_all().map_err(|e| io_err(path, "fsync", e))?;
        }
        Ok(Wal {
            file,
            path: path.to_path_buf(),
            offset: 0,
            capacity,
            buf: Vec::new(),
        })
    }

    /// Whether `records` fit after what was written since the last reset.
    pub fn has_room(&self, records: &Encoded) -> bool {
        self.offset + framed_len(records) <= self.capacity
    }

    /// Writes the frames in one `pwrite` (not yet synced).
    pub fn append(&mut self, records: &Encoded) -> Result<(), AuditError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(usize::try_from(framed_len(records)).unwrap_or(0));
        for (seq, bytes) in records.iter() {
            frame(seq, bytes, &mut buf);
        }
        let written = self.file.write_all_at(&buf, self.offset);
        let len = buf.len() as u64;
        // A burst's buffer is not kept: a quiet daemon holds at most a megabyte here.
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        written.map_err(|e| io_err(&self.path, "write", e))?;
        self.offset += len;
        Ok(())
    }

    pub fn sync(&self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| io_err(&self.path, "fdatasync", e))
    }

    /// After a durable redb commit holds everything written: start over at the beginning.
    pub fn reset(&mut self) {
        self.offset = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }
}

fn framed_len(records: &Encoded) -> u64 {
    (HEADER * records.len() + records.bytes_len()) as u64
}

fn frame(seq: u64, bytes: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(bytes);
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(bytes);
}

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
pub fn replay(db: &Database, path: &Path) -> Result<Replayed, AuditError> {
    let mut data = vec![];
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)
                .map_err(|e| io_err(path, "read", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, "open", e)),
    }
    let mut tip = read_claimed_head(db)?;
    let mut apply: Vec<(u64, &[u8])> = vec![];
    for (seq, body) in frames(&data) {
        if seq <= tip.seq {
            continue;
        }
        if seq != tip.seq + 1 {
            break;
        }
        let map = decode_map(seq, body)?;
        let claimed = map.get("hash").and_then(Value::as_str).unwrap_or_default();
        let prev = map
            .get("prev_hash")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if prev != tip.hash || record_hash(&map) != claimed {
            return Err(AuditError::Wal {
                path: path.to_path_buf(),
                reason: format!(
                    "record {seq} in the write-ahead log does not continue the chain at seq {}",
                    tip.seq
                ),
            });
        }
        tip = ChainPoint {
            seq,
            hash: claimed.to_string(),
        };
        apply.push((seq, body));
    }
    if !apply.is_empty() {
        let txn = db.begin_write().ctx("begin audit replay")?;
        {
            let mut records = txn.open_table(RECORDS).ctx("open audit_records")?;
            for (seq, body) in &apply {
                records.insert(*seq, *body).ctx("insert replayed record")?;
            }
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
    use crate::encode::Scratch;
    use crate::record::{NewRecord, now_micros};
    use crate::{EventKind, verify};

    fn chain(from: &ChainPoint, n: u64) -> Encoded {
        let (mut e, mut scratch) = (Encoded::default(), Scratch::default());
        for seq in from.seq + 1..=from.seq + n {
            let mut r = NewRecord::new(EventKind::Request);
            r.action = Some(format!("http.request.{seq}"));
            e.push(seq, &now_micros(), &r, &from.hash, &mut scratch);
        }
        e
    }

    fn setup() -> (tempfile::TempDir, Database, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("a.redb")).expect("db");
        let wal = dir.path().join("audit.wal");
        (dir, db, wal)
    }

    #[test]
    fn records_only_in_the_wal_are_recovered_and_verify() {
        let (_d, db, path) = setup();
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        wal.append(&chain(&ChainPoint::genesis(), 5))
            .expect("append");
        wal.sync().expect("sync");
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (5, 5));
        let report = verify(&db).expect("verify");
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!(report.checked, 5);
        // Again: nothing new, nothing doubled.
        assert_eq!(replay(&db, &path).expect("replay").applied, 0);
    }

    #[test]
    fn a_torn_tail_ends_the_log_and_stale_frames_from_an_older_pass_are_skipped() {
        let (_d, db, path) = setup();
        let first = chain(&ChainPoint::genesis(), 6);
        let mut wal = Wal::open(&path, 64 * 1024).expect("open");
        wal.append(&first).expect("append");
        replay(&db, &path).expect("checkpoint the first pass");
        wal.reset();
        let tip = crate::store::read_head(&db).expect("head");
        let second = chain(&tip, 2);
        wal.append(&second).expect("append");
        // A torn third frame: the write stopped partway, the rest is old bytes.
        let third = chain(&read_tip(&second), 1);
        let at = wal.offset;
        wal.append(&third).expect("append");
        wal.file
            .write_all_at(&[0u8; 8], at + HEADER as u64 + 20)
            .expect("tear");
        let r = replay(&db, &path).expect("replay");
        assert_eq!((r.applied, r.tip.seq), (2, 8));
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
        wal.append(&bad).expect("append");
        let err = replay(&db, &path).expect_err("broken chain");
        assert!(
            err.to_string().contains("does not continue the chain"),
            "{err}"
        );
    }

    fn read_tip(records: &Encoded) -> ChainPoint {
        records.tip().unwrap_or_else(ChainPoint::genesis)
    }
}
