//! The audit write-ahead log: a fixed-size, pre-zeroed file records are appended to (by the
//! request's own thread in batched mode, `appender.rs`; a group at a time by the writer in
//! strict mode) before the writer thread syncs it and fills redb from it.
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

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::AuditError;

/// Size of the file; a checkpoint resets the write position well before a busy second fills it.
pub const WAL_BYTES: u64 = 16 * 1024 * 1024;
pub(crate) const HEADER: usize = 16;

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

pub(crate) fn io_err(path: &Path, what: &str, e: std::io::Error) -> AuditError {
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
        cache_in_small_folios(&file, path, capacity)?;
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
    #[cfg(test)]
    pub fn write(&mut self, seq: u64, bytes: &[u8]) -> Result<(), WriteError> {
        self.write_many(std::iter::once((seq, bytes))).1
    }

    /// Writes the frames of `records`, in order, with one `pwrite` per half they land in, and
    /// returns how many are in the file: all of them, or those before the one that found
    /// both halves full or whose write failed (the error says which).
    pub fn write_many<'a>(
        &mut self,
        records: impl Iterator<Item = (u64, &'a [u8])>,
    ) -> (usize, Result<(), WriteError>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let (mut done, mut framed) = (0, 0);
        let mut result = Ok(());
        for (seq, bytes) in records {
            let len = (HEADER + bytes.len()) as u64;
            if len > self.half {
                // Never fits: refused like a full log.
                result = Err(WriteError::Full);
                break;
            }
            if self.offset + buf.len() as u64 + len > self.half {
                if let Err(e) = self.put(&buf) {
                    result = Err(e);
                    break;
                }
                (done, framed) = (done + framed, 0);
                buf.clear();
                if !self.switch() {
                    result = Err(WriteError::Full);
                    break;
                }
            }
            frame(seq, bytes, &mut buf);
            framed += 1;
        }
        if result.is_ok() && framed > 0 {
            match self.put(&buf) {
                Ok(()) => done += framed,
                Err(e) => result = Err(e),
            }
        }
        // A burst's buffer is not kept.
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        (done, result)
    }

    /// Gives back a frame buffer a load grew past what a quiet log needs.
    pub fn release_idle(&mut self) {
        if self.buf.capacity() > crate::encoded::IDLE_KEEP_BYTES {
            self.buf = Vec::new();
        }
    }

    /// Writes `buf` at the write position and moves past it.
    fn put(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(buf, self.active * self.half + self.offset)
            .map_err(|e| WriteError::Io(io_err(&self.path, "write", e)))?;
        self.offset += buf.len() as u64;
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

    /// The file, for tests that damage it.
    #[cfg(test)]
    pub fn file_for_test(&self) -> &File {
        &self.file
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

/// Leaves the file in the page cache as page-sized folios. ext4 (Linux 6.16 on) caches a file
/// written or read in large chunks (the zero-fill, replay's reads) in large folios, and every
/// small `pwrite` into one walks all of its block buffers: a 500-byte append cost about twice
/// what it costs in 4 KiB folios (2.9 against 1.5 us here), on every request. The pages are
/// dropped (clean after a sync) and read back without readahead, which fills exactly the pages
/// a read asks for, one small folio each. Reading them back now also keeps the block reads a
/// partial-page write into an uncached page needs off the request path.
fn cache_in_small_folios(file: &File, path: &Path, len: u64) -> Result<(), AuditError> {
    use std::os::fd::AsRawFd;
    file.sync_data().map_err(|e| io_err(path, "fdatasync", e))?;
    let advise = |advice: libc::c_int| {
        // SAFETY: a valid open descriptor; posix_fadvise only reads its arguments.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) };
        if rc != 0 {
            // Only the cost of later writes depends on it.
            let e = std::io::Error::from_raw_os_error(rc);
            tracing::warn!(path = %path.display(), advice, "posix_fadvise: {e}");
        }
    };
    advise(libc::POSIX_FADV_DONTNEED);
    advise(libc::POSIX_FADV_RANDOM);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut at = 0;
    while at < len {
        let n = buf
            .len()
            .min(usize::try_from(len - at).unwrap_or(buf.len()));
        file.read_exact_at(&mut buf[..n], at)
            .map_err(|e| io_err(path, "read back", e))?;
        at += n as u64;
    }
    advise(libc::POSIX_FADV_NORMAL);
    Ok(())
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
