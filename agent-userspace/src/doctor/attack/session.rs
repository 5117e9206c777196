//! The operator's session each probe run starts in: a pseudo-terminal as
//! its controlling terminal and standard input (as a shell's foreground job
//! has), and a fresh session keyring holding a key whose content is the
//! run's keyring marker. The terminal's pending input is a sink: what the
//! operator's shell would read and run once the agent exits.
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Context;

/// Where the kernel says whether unprivileged TIOCSTI is allowed at all.
const LEGACY_TIOCSTI: &str = "/proc/sys/dev/tty/legacy_tiocsti";

pub struct OperatorSession {
    _master: OwnedFd,
    slave: OwnedFd,
    key_name: CString,
    key: Vec<u8>,
}

impl OperatorSession {
    pub fn open(key_name: &str, key: &str) -> anyhow::Result<OperatorSession> {
        let pty = nix::pty::openpty(None, None).context("opening a pseudo-terminal")?;
        Ok(OperatorSession {
            _master: pty.master,
            slave: pty.slave,
            key_name: CString::new(key_name)?,
            key: key.as_bytes().to_vec(),
        })
    }

    /// `cmd` starts a new session on this terminal, in a new session
    /// keyring holding the key.
    pub fn attach(&self, cmd: &mut Command) {
        let fd = self.slave.as_raw_fd();
        let (name, key) = (self.key_name.clone(), self.key.clone());
        // SAFETY: dup2, setsid, ioctl, keyctl and add_key are plain system
        // calls on memory this closure owns; it runs in the forked child
        // after its standard descriptors are in place (dup2 puts the
        // terminal over the standard input set there).
        unsafe {
            cmd.pre_exec(move || {
                const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
                if libc::dup2(fd, 0) < 0
                    || libc::setsid() < 0
                    || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0
                    || libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0) < 0
                    || libc::syscall(
                        libc::SYS_add_key,
                        c"user".as_ptr(),
                        name.as_ptr(),
                        key.as_ptr(),
                        key.len(),
                        libc::KEY_SPEC_SESSION_KEYRING,
                    ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The input waiting in the terminal: what was typed into it.
    pub fn typed(&self) -> anyhow::Result<Vec<u8>> {
        let fd = self.slave.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on a descriptor this value owns.
        let set = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !set {
            return Err(std::io::Error::last_os_error())
                .context("making the terminal non-blocking");
        }
        let mut file = std::fs::File::from(self.slave.try_clone()?);
        let mut typed = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return Ok(typed),
                Ok(n) => typed.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(typed),
                Err(e) => return Err(e).context("reading the terminal"),
            }
        }
    }
}

/// This kernel refuses TIOCSTI to every unprivileged process
/// (`dev.tty.legacy_tiocsti = 0`): typing into a terminal is held by the
/// host whatever Cordon does.
pub fn tiocsti_off_on_this_kernel() -> bool {
    std::fs::read_to_string(LEGACY_TIOCSTI).is_ok_and(|v| v.trim() == "0")
}
