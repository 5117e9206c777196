//! Descriptors the agent must not inherit. A socket connected before the
//! launch belongs to its creator's cgroup, so no hook of the agent's cgroup
//! sees its packets: the only safe place to stop it is before exec.
use std::os::fd::RawFd;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FdError {
    #[error(
        "{} is a network socket ({family}); an agent would send through it around Cordon. Redirect it, or pass --allow-socket-stdio to accept that",
        stdio_name(*fd)
    )]
    SocketStdio { fd: RawFd, family: &'static str },
    #[error("inspecting descriptor {fd}: {errno}")]
    Inspect { fd: RawFd, errno: nix::errno::Errno },
    #[error("closing inherited descriptors from {first}: {errno}")]
    Close {
        first: u32,
        errno: nix::errno::Errno,
    },
}

fn stdio_name(fd: RawFd) -> &'static str {
    match fd {
        0 => "standard input",
        1 => "standard output",
        _ => "standard error",
    }
}

/// Refuses a run whose stdin, stdout or stderr is an inet socket. Unix
/// sockets (the journal, a supervisor's pipe) stay allowed.
pub fn check_stdio(allow_socket_stdio: bool) -> Result<(), FdError> {
    for fd in 0..=2 {
        if let Some(family) = inet_family(fd)?
            && !allow_socket_stdio
        {
            return Err(FdError::SocketStdio { fd, family });
        }
    }
    Ok(())
}

fn inet_family(fd: RawFd) -> Result<Option<&'static str>, FdError> {
    use nix::sys::stat::{SFlag, fstat};
    // SAFETY: the descriptor is only inspected, for the duration of the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let st = match fstat(borrowed) {
        Ok(st) => st,
        // A closed stdio descriptor is no socket.
        Err(nix::errno::Errno::EBADF) => return Ok(None),
        Err(errno) => return Err(FdError::Inspect { fd, errno }),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Ok(None);
    }
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `domain`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut domain).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(FdError::Inspect {
            fd,
            errno: nix::errno::Errno::last(),
        });
    }
    Ok(match domain {
        libc::AF_INET => Some("IPv4"),
        libc::AF_INET6 => Some("IPv6"),
        _ => None,
    })
}

/// Marks every descriptor from `3 + preserve` up close-on-exec, and clears
/// the flag on the `preserve` descriptors from 3 (systemd-run's
/// `--preserve-fds`): exec then leaves the agent exactly stdio and those.
pub fn close_inherited(preserve: u32) -> Result<(), FdError> {
    let first = 3 + preserve;
    // SAFETY: close_range only changes descriptor flags in this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(FdError::Close {
            first,
            errno: nix::errno::Errno::last(),
        });
    }
    for fd in 3..first as RawFd {
        // SAFETY: F_GETFD/F_SETFD on a descriptor number; a closed one fails
        // with EBADF, which means there is nothing to keep.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_socket_as_stdout_is_named_in_the_refusal() {
        let e = FdError::SocketStdio {
            fd: 1,
            family: "IPv4",
        };
        assert!(
            e.to_string()
                .starts_with("standard output is a network socket (IPv4)")
        );
    }

    #[test]
    fn an_inet_socket_is_recognised_and_a_unix_one_is_not() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(inet_family(l.as_raw_fd()).unwrap(), Some("IPv4"));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(inet_family(a.as_raw_fd()).unwrap(), None);
    }
}
