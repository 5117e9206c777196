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

pub struct Bait {
    decoy: Child,
    /// The other terminal's master and slave, held open for the run.
    terminal_fds: (OwnedFd, OwnedFd),
    pub terminal: PathBuf,
    disk: Option<PathBuf>,
    shmid: i32,
    pub shm_key: i32,
}

/// The markers a run's bait carries.
pub struct Markers<'a> {
    pub process: &'a str,
    pub terminal: &'a str,
    pub disk: &'a str,
    pub shm: &'a str,
}

impl Bait {
    /// `dir` holds the disk's backing file (a run's own, per run).
    pub fn plant(m: &Markers<'_>, shm_key: i32, dir: &Path) -> anyhow::Result<Bait> {
        let decoy = Command::new("sleep")
            .arg0(m.process)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the decoy process (sleep)")?;
        let mut bait = Bait {
            decoy,
            terminal_fds: other_terminal_fds()?,
            terminal: PathBuf::new(),
            disk: None,
            shmid: -1,
            shm_key,
        };
        bait.terminal = type_into(&bait.terminal_fds, m.terminal)?;
        // Where losetup fails there is no disk: the control run cannot read
        // one either, so the verdict says inconclusive, not held.
        bait.disk = match disk(m.disk, dir) {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!("cordon doctor: {e:#}");
                None
            }
        };
        bait.shmid = shared_memory(shm_key, m.shm)?;
        Ok(bait)
    }

    /// The block device, if one could be made.
    pub fn disk(&self) -> Option<&PathBuf> {
        self.disk.as_ref()
    }
}

fn other_terminal_fds() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let pty = nix::pty::openpty(None, None).context("opening a pseudo-terminal")?;
    Ok((pty.master, pty.slave))
}

/// Types `line` into the terminal and opens its slave to every uid.
fn type_into(fds: &(OwnedFd, OwnedFd), line: &str) -> anyhow::Result<PathBuf> {
    let slave = std::fs::read_link(format!("/proc/self/fd/{}", fds.1.as_raw_fd()))
        .context("naming the pseudo-terminal")?;
    open_to_all(&slave)?;
    let text = format!("{line}\n");
    nix::unistd::write(&fds.0, text.as_bytes()).context("typing into the pseudo-terminal")?;
    Ok(slave)
}

fn disk(marker: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let backing = dir.join(format!("{marker}.img"));
    let mut bytes = marker.as_bytes().to_vec();
    bytes.resize(64 * 1024, 0);
    std::fs::write(&backing, &bytes).with_context(|| format!("writing {}", backing.display()))?;
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
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    open_to_all(&path)?;
    Ok(path)
}

fn shared_memory(key: i32, marker: &str) -> anyhow::Result<i32> {
    // SAFETY: plain System V calls; the segment is attached only to copy
    // the marker in (it is shorter than the segment) and detached at once.
    unsafe {
        let id = libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666);
        if id < 0 {
            return Err(std::io::Error::last_os_error())
                .context("creating a shared memory segment");
        }
        let at = libc::shmat(id, std::ptr::null(), 0);
        if at as isize == -1 {
            let e = std::io::Error::last_os_error();
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            return Err(e).context("attaching the shared memory segment");
        }
        let bytes = marker.as_bytes();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast::<u8>(), bytes.len().min(4095));
        libc::shmdt(at);
        Ok(id)
    }
}

fn open_to_all(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("opening {} to every uid", path.display()))
}

impl Drop for Bait {
    fn drop(&mut self) {
        // Best effort: what is left behind holds a marker, not a secret.
        if let Err(e) = self.decoy.kill().and_then(|()| self.decoy.wait().map(drop)) {
            tracing::debug!("stopping the decoy process: {e}");
        }
        if let Some(path) = &self.disk
            && let Err(e) = Command::new("losetup").arg("-d").arg(path).status()
        {
            tracing::debug!("detaching {}: {e}", path.display());
        }
        // SAFETY: removes the segment this value created.
        if self.shmid >= 0
            && unsafe { libc::shmctl(self.shmid, libc::IPC_RMID, std::ptr::null_mut()) } < 0
        {
            tracing::debug!("removing the shared memory segment");
        }
    }
}
