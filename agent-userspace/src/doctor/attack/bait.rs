//! What a run leaves on the host for the agent to steal, outside every
//! agent and for the length of one run, each carrying its technique's
//! marker where only that technique could find it:
//! - a process whose command line is the `process-cmdline` marker, as an
//!   operator's `mysql -pPASSWORD` holds a password;
//! - another terminal with the `other-terminal` marker typed into it and
//!   not yet read, as an operator's other login holds what they type;
//! - a block device whose first bytes are the `raw-device` marker, as a
//!   disk holds the files on it (a loop device; skipped where `losetup`
//!   fails, which the control run then shows as inconclusive);
//! - a System V shared memory segment holding the `shared-memory` marker.
//!
//! Each is open to every uid (mode 0666), so file modes never decide: what
//! holds is Cordon's (`contain::host_view`, the device allowlist). The
//! probe is told where each is, never what it holds.
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use rand::Rng;

/// A run's bait; each piece is removed when its value drops, so a piece
/// that fails to plant takes down the ones planted before it.
pub struct Bait {
    _decoy: Decoy,
    terminal: OtherTerminal,
    disk: Option<LoopDevice>,
    segment: Segment,
}

/// The markers a run's bait carries.
pub struct Markers<'a> {
    pub process: &'a str,
    pub terminal: &'a str,
    pub disk: &'a str,
    pub shm: &'a str,
}

impl Bait {
    /// `dir` holds the disk's backing file.
    pub fn plant(m: &Markers<'_>, dir: &Path) -> anyhow::Result<Bait> {
        let decoy = Decoy::start(m.process)?;
        let terminal = OtherTerminal::open(m.terminal)?;
        // Where losetup fails there is no disk: the control run cannot read
        // one either, so the verdict says inconclusive, not held.
        let disk = match LoopDevice::attach(m.disk, dir) {
            Ok(disk) => Some(disk),
            Err(e) => {
                eprintln!("cordon doctor: {e:#}");
                None
            }
        };
        let segment = Segment::create(m.shm)?;
        Ok(Bait {
            _decoy: decoy,
            terminal,
            disk,
            segment,
        })
    }

    /// The other terminal's slave.
    pub fn terminal(&self) -> &Path {
        &self.terminal.slave_path
    }

    /// The block device, if one could be made.
    pub fn disk(&self) -> Option<&Path> {
        self.disk.as_ref().map(|d| d.path.as_path())
    }

    /// The System V key of the segment.
    pub fn shm_key(&self) -> i32 {
        self.segment.key
    }
}

/// `sleep`, named with the marker (its argv[0]), for longer than a run.
struct Decoy(Child);

impl Decoy {
    fn start(marker: &str) -> anyhow::Result<Decoy> {
        Command::new("sleep")
            .arg0(marker)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Decoy)
            .context("starting the decoy process (sleep)")
    }
}

/// A pty with the marker typed into it and not yet read; its slave open to
/// every uid. Both ends stay open for the run.
struct OtherTerminal {
    _master: OwnedFd,
    _slave: OwnedFd,
    slave_path: PathBuf,
}

impl OtherTerminal {
    fn open(marker: &str) -> anyhow::Result<OtherTerminal> {
        let pty = nix::pty::openpty(None, None).context("opening a pseudo-terminal")?;
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .context("naming the pseudo-terminal")?;
        open_to_all(&slave_path)?;
        nix::unistd::write(&pty.master, format!("{marker}\n").as_bytes())
            .context("typing into the pseudo-terminal")?;
        Ok(OtherTerminal {
            _master: pty.master,
            _slave: pty.slave,
            slave_path,
        })
    }
}

/// A loop device over a file in `dir` whose first bytes are the marker.
struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    fn attach(marker: &str, dir: &Path) -> anyhow::Result<LoopDevice> {
        let backing = dir.join(format!("{marker}.img"));
        let mut bytes = marker.as_bytes().to_vec();
        bytes.resize(64 * 1024, 0);
        std::fs::write(&backing, &bytes)
            .with_context(|| format!("writing {}", backing.display()))?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output()
            .context("running losetup for the raw-device technique")?;
        if !out.status.success() {
            bail!(
                "losetup for the raw-device technique: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let disk = LoopDevice {
            path: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        };
        open_to_all(&disk.path)?;
        Ok(disk)
    }
}

/// A System V segment (mode 0666) holding the marker, under a fresh key:
/// IPC_EXCL refuses one already taken.
struct Segment {
    id: i32,
    key: i32,
}

impl Segment {
    fn create(marker: &str) -> anyhow::Result<Segment> {
        let key = 0x4000_0000 | (rand::rng().random::<u32>() & 0x3fff_ffff) as i32;
        // SAFETY: plain System V calls; the segment is attached only to copy
        // the marker in (it is shorter than the segment) and detached at once.
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666) };
        if id < 0 {
            return Err(std::io::Error::last_os_error())
                .context("creating a shared memory segment");
        }
        let segment = Segment { id, key };
        // SAFETY: as above.
        unsafe {
            let at = libc::shmat(id, std::ptr::null(), 0);
            if at as isize == -1 {
                return Err(std::io::Error::last_os_error())
                    .context("attaching the shared memory segment");
            }
            let bytes = marker.as_bytes();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast::<u8>(), bytes.len().min(4095));
            libc::shmdt(at);
        }
        Ok(segment)
    }
}

fn open_to_all(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("opening {} to every uid", path.display()))
}

// Removal is best effort: what is left behind holds a marker, not a secret.

impl Drop for Decoy {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill().and_then(|()| self.0.wait().map(drop)) {
            tracing::debug!("stopping the decoy process: {e}");
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = Command::new("losetup").arg("-d").arg(&self.path).status() {
            tracing::debug!("detaching {}: {e}", self.path.display());
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: removes the segment this value created.
        if unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
            tracing::debug!("removing the shared memory segment");
        }
    }
}
