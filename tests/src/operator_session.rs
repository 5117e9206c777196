//! What an operator's login session hands `cordon run` without meaning to:
//! a terminal (the agent's controlling terminal, which its shell reads from
//! next) and a session keyring (whose keys its possessors may read). Tests
//! and the demo give a launch both, then look at what the agent got out of
//! them.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A pseudo-terminal that a launch gets as its standard input and
/// controlling terminal, as a shell's foreground job has.
pub struct Terminal {
    _master: OwnedFd,
    slave: OwnedFd,
}

impl Terminal {
    pub fn open() -> std::io::Result<Terminal> {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        Ok(Terminal {
            _master: pty.master,
            slave: pty.slave,
        })
    }

    /// `cmd` starts a new session with this terminal as its controlling
    /// terminal and standard input (put over whatever its runner set).
    pub fn attach(&self, cmd: &mut Command) {
        let fd = self.slave.as_raw_fd();
        // SAFETY: dup2, setsid and ioctl are async-signal-safe; this runs in
        // the forked child after its standard descriptors are in place.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 0) < 0
                    || libc::setsid() < 0
                    || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// What the operator's shell would read from the terminal next: the
    /// input waiting in it (empty when none).
    pub fn pending_input(&self) -> std::io::Result<String> {
        let fd = self.slave.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on a descriptor this value owns.
        let set = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !set {
            return Err(std::io::Error::last_os_error());
        }
        let mut file = std::fs::File::from(self.slave.try_clone()?);
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(String::new()),
            Err(e) => Err(e),
        }
    }
}

/// `cmd` starts in a new session keyring holding `secret` as the user key
/// `name`, as an operator's login session holds its keys.
pub fn with_session_key(cmd: &mut Command, name: &str, secret: &str) -> std::io::Result<()> {
    let name = std::ffi::CString::new(name)?;
    let secret = secret.as_bytes().to_vec();
    // SAFETY: keyctl and add_key are plain system calls on buffers this
    // closure owns; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
            if libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0) < 0
                || libc::syscall(
                    libc::SYS_add_key,
                    c"user".as_ptr(),
                    name.as_ptr(),
                    secret.as_ptr(),
                    secret.len(),
                    libc::KEY_SPEC_SESSION_KEYRING,
                ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Python that looks for the user key `sys.argv[1]` in its session
/// keyring and reads it: `res["keyring"]` is `{"ok": false, "errno": N}` or
/// what it read. For `host::ATTEMPT_PRELUDE` scripts.
pub const READ_SESSION_KEY: &str = r#"
def read_session_key(name):
    import platform
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_keyctl = {"x86_64": 250, "aarch64": 219}[platform.machine()]
    KEYCTL_SEARCH, KEYCTL_READ, SESSION = 10, 11, -3
    key = libc.syscall(SYS_keyctl, KEYCTL_SEARCH, ctypes.c_int(SESSION), b"user", name.encode(), 0)
    if key < 0:
        raise OSError(ctypes.get_errno(), "keyctl search")
    buf = ctypes.create_string_buffer(4096)
    n = libc.syscall(SYS_keyctl, KEYCTL_READ, key, buf, 4096)
    if n < 0:
        raise OSError(ctypes.get_errno(), "keyctl read")
    return buf.raw[:n].decode(errors="replace")
"#;

/// Python that types `line` and a newline into its terminal (standard
/// input), byte by byte. For `host::ATTEMPT_PRELUDE` scripts.
pub const TYPE_INTO_TERMINAL: &str = r#"
import fcntl, termios
def type_into_terminal(line):
    for b in (line + "\n").encode():
        fcntl.ioctl(0, termios.TIOCSTI, bytes([b]))
    return "typed"
"#;
