//! The audit write-ahead log: a fixed-size, pre-zeroed file each request's own thread appends
//! its record to (`appender.rs`) before the writer thread syncs it and fills redb from it.
//!
//! Why: a durable redb commit rewrites several B-tree pages and fsyncs them (about 1 ms here);
//! an overwrite of already-allocated file blocks plus `fdatasync` needs no metadata journal and
//! costs a fraction of that. Records reach redb in non-durable commits (visible to readers at
//! once) and a durable redb commit (a checkpoint) every second, or when a half fills, lets
//! the log be written again.
//!
//! The file is written in two halves, one at a time. A checkpoint first moves the appenders to
//! the other half, then makes everything the half it left holds durable in redb, then frees it;
//! appenders never wait for the checkpoint, and no record is ever copied or moved. A half is
//! written from its start again only once freed.
//!
//! Frame: `len u32 | crc32 u32 | seq u64 | record bytes` (little endian; the CRC covers seq and
//! bytes). Replay reads frames from the start of each half: frames at or below the database's
//! tip are skipped (already checkpointed, or left from an older pass over the half), the tip's
//! successor is applied after its chain link is checked, and a missing one ends the log.
//! Stale frames from earlier passes always carry lower seqs than any record not yet
//! checkpointed, so they can never be mistaken for new records.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use redb::Database;
use serde_json::Value;

use crate::canonical::record_hash;
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
    /// Bytes in each of the two halves the file is written in, one at a time.
    half: u64,
    /// The half being written (0 or 1) and the write position inside it.
    active: u64,
    offset: u64,
    /// The other half still holds records no durable redb commit covers yet; it is written
    /// again only after a checkpoint frees it ([`Wal::freed`]).
    other_busy: bool,
    /// Reused for every frame: an append allocates nothing here.
    buf: Vec<u8>,
}

/// Why a frame was not written.
pub(crate) enum WriteError {
    /// Both halves hold records waiting for a checkpoint.
    Full,
    Io(AuditError),
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> AuditError {
    AuditError::Wal {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

impl Wal {
    /// Opens (creating, 0600) and zero-fills the file to `capacity`, so later writes overwrite
    /// allocated blocks. Call [`replay`] first: writing starts at the first half's start.
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
            half: capacity / 2,
            active: 0,
            offset: 0,
            other_busy: false,
            buf: Vec::new(),
        })
    }

    /// A second handle on the file, for the thread that syncs it while appends go on.
    pub fn syncer(&self) -> Result<Syncer, AuditError> {
        Ok(Syncer {
            file: self
                .file
                .try_clone()
                .map_err(|e| io_err(&self.path, "dup", e))?,
            path: self.path.clone(),
        })
    }

    /// Writes one record's frame in one `pwrite` (not yet synced). A full half moves on to
    /// the other one when a checkpoint has freed it.
    pub fn write(&mut self, seq: u64, bytes: &[u8]) -> Result<(), WriteError> {
        let len = (HEADER + bytes.len()) as u64;
        if self.offset + len > self.half && !self.switch() {
            return Err(WriteError::Full);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        frame(seq, bytes, &mut buf);
        let written = self
            .file
            .write_all_at(&buf, self.active * self.half + self.offset);
        // A huge record's buffer is not kept.
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        written.map_err(|e| WriteError::Io(io_err(&self.path, "write", e)))?;
        self.offset += len;
        Ok(())
    }

    /// Starts writing the other half from its start, when no record there waits for a
    /// checkpoint; the half left behind then does. Returns whether it switched.
    pub fn switch(&mut self) -> bool {
        if self.other_busy {
            return false;
        }
        self.active ^= 1;
        self.offset = 0;
        self.other_busy = true;
        true
    }

    /// A durable redb commit holds everything the other half held: it may be written again.
    pub fn freed(&mut self) {
        self.other_busy = false;
    }

    /// Whether the other half waits for a checkpoint.
    pub fn other_busy(&self) -> bool {
        self.other_busy
    }

    /// Bytes written to the active half since it was started.
    pub fn used(&self) -> u64 {
        self.offset
    }

    pub fn half_len(&self) -> u64 {
        self.half
    }

    /// Reopens the file read-only (writes then fail with EBADF, a real I/O error) or
    /// read-write again.
    #[cfg(test)]
    pub fn reopen_for_test(&mut self, writable: bool) {
        self.file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&self.path)
            .expect("reopen the log");
    }
}

/// Syncs the log file from the writer thread, outside the appenders' lock.
pub(crate) struct Syncer {
    file: File,
    path: PathBuf,
}

impl Syncer {
    pub fn sync(&self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| io_err(&self.path, "fdatasync", e))
    }
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
///
/// Frames are read from the start of each half (and, from the file's start, across the whole
/// file, as logs written in one pass before the halves were read). Each seq after the
/// database's tip is looked for in both; the copy that continues the chain is applied, and a
/// seq whose only copies do not is an error, never skipped. The first seq found nowhere ends
/// the log.
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
    use crate::encoded::Encoded;
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
        wal.file
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
