//! The forwarder's persisted position: the last seq the collector is taken to have (see
//! `acks.rs`). Written atomically (temporary file, fsync, rename), so a crash leaves the old
//! cursor or the new one, never a torn one; an older cursor only means records are sent again.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ForwardError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OnDisk {
    /// Records up to and including this seq reached the collector.
    seq: u64,
    /// The collector they reached (informational: a new address keeps the position).
    collector: String,
}

#[derive(Debug, Clone)]
pub struct CursorFile {
    path: PathBuf,
}

impl CursorFile {
    pub fn new(path: &Path) -> CursorFile {
        CursorFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored seq; `None` when no cursor was ever written (forward from the start).
    pub fn load(&self) -> Result<Option<u64>, ForwardError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ForwardError::cursor(&self.path, e)),
        };
        let on_disk: OnDisk =
            serde_json::from_slice(&bytes).map_err(|e| ForwardError::cursor(&self.path, e))?;
        Ok(Some(on_disk.seq))
    }

    pub fn store(&self, seq: u64, collector: &str) -> Result<(), ForwardError> {
        let body = serde_json::to_vec(&OnDisk {
            seq,
            collector: collector.into(),
        })
        .map_err(|e| ForwardError::cursor(&self.path, e))?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| ForwardError::cursor(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_a_reopen_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let c = CursorFile::new(&dir.path().join("audit-forward.cursor"));
        assert_eq!(c.load().unwrap(), None);
        c.store(41, "127.0.0.1:514").unwrap();
        c.store(42, "127.0.0.1:514").unwrap();
        assert_eq!(CursorFile::new(c.path()).load().unwrap(), Some(42));
        assert!(!c.path().with_extension("tmp").exists());
    }

    #[test]
    fn a_corrupt_cursor_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-forward.cursor");
        std::fs::write(&path, b"{\"seq\":").unwrap();
        let err = CursorFile::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("audit-forward.cursor"), "{err}");
    }
}
