//! An audit log that fails the way a full disk fails, for root too: the daemon's write-ahead
//! log moved onto a small tmpfs (a symlink at `STATE/audit.wal`), then emptied and the tmpfs
//! filled, so the writer's next `pwrite` gets ENOSPC. Undone by [`FullDisk::free`].

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::error::{Error, Result};
use crate::trail::AUDIT_WAL;
use crate::world::World;

/// A tmpfs holding the daemon's write-ahead log; lazily unmounted on drop.
#[derive(Debug)]
pub struct FullDisk {
    dir: tempfile::TempDir,
    wal: PathBuf,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.into(),
        source,
    }
}

impl FullDisk {
    /// Restarts the daemon with its write-ahead log on a 20 MiB tmpfs (the log is 16 MiB).
    pub fn under(w: &mut World) -> Result<FullDisk> {
        let dir = tempfile::tempdir().map_err(io("tmpfs dir"))?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=20m,mode=0700", "cordon-e2e-full"])
            .arg(dir.path())
            .status()
            .map_err(io("mount"))?;
        if !mounted.success() {
            return Err(Error::Setup(format!("mounting a tmpfs: {mounted}")));
        }
        let disk = FullDisk {
            wal: dir.path().join(AUDIT_WAL),
            dir,
        };
        w.daemon.stop()?;
        let wal = w.daemon.state_dir().join(AUDIT_WAL);
        std::fs::copy(&wal, &disk.wal).map_err(io("copy the wal"))?;
        std::fs::remove_file(&wal).map_err(io("remove the wal"))?;
        std::os::unix::fs::symlink(&disk.wal, &wal).map_err(io("symlink the wal"))?;
        w.daemon.restart()?;
        Ok(disk)
    }

    /// Every later audit write fails with ENOSPC.
    pub fn fill(&self) -> Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.wal)
            .and_then(|f| f.set_len(0))
            .map_err(io("empty the wal"))?;
        let mut f = std::fs::File::create(self.dir.path().join("filler"))
            .map_err(io("create the filler"))?;
        let chunk = vec![0xa5u8; 64 * 1024];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Ok(()),
                Err(e) => return Err(io("fill the tmpfs")(e)),
            }
        }
    }

    /// Room again: the next audit writes succeed.
    pub fn free(&self) -> Result<()> {
        std::fs::remove_file(self.dir.path().join("filler")).map_err(io("remove the filler"))
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        // Lazily: the daemon may still hold the log open. Nothing to report to from a drop.
        if let Err(e) = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status()
        {
            eprintln!("unmounting {}: {e}", self.dir.path().display());
        }
    }
}
