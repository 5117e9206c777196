//! What every contained agent is refused outright, by a seccomp filter,
//! because neither Landlock nor the cgroup hooks see it.
//!
//! **Its operator's terminal.** The agent's standard descriptors are the
//! terminal it was started from, opened before Landlock was entered, so no
//! Landlock rule reaches them. Through them, `ioctl(TIOCSTI)` pushes bytes
//! into the terminal's input as if typed: once the agent exits, the
//! operator's shell (often a root shell) reads and runs them, outside the
//! agent's cgroup and every rule Cordon has. `TIOCLINUX` does the same
//! through a virtual console's paste buffer. Kernels since 6.2 can turn
//! TIOCSTI off (`dev.tty.legacy_tiocsti = 0`), but many hosts leave it on.
//! A new session would cut the agent off its terminal, and with it the
//! operator's Ctrl-C and job control; refusing the two requests does not.
//!
//! **The kernel keyrings.** `cordon run` inherits its operator's session
//! keyring, and possessing a keyring is what key permissions mostly test:
//! an agent dropped to `nobody` could still read every key its operator
//! kept there (and a real-root agent, root's own user keyring). Keyrings
//! are not namespaced and no path rule covers them, so `add_key`, `keyctl`
//! and `request_key` are refused, as container runtimes' default profiles
//! do; an agent has no key of its own to keep in them.
//!
//! **Sockets the cgroup hooks never see.** Cordon's socket hooks run for
//! inet sockets only (and unix ones, by path). Any other family is a way
//! out they do not watch: on a VM (Firecracker, Kata, Nitro, most cloud
//! sandboxes for agents) an `AF_VSOCK` socket reaches the hypervisor's host
//! and whatever listens there, and modules the kernel loads on demand add
//! TIPC, RDS, CAN and others. An agent may create `AF_UNIX`, `AF_INET`,
//! `AF_INET6` and `AF_NETLINK` sockets (the C library reads interfaces and
//! routes over netlink) and no other.
//!
//! **io_uring.** Its rings make system calls (`socket` among them) without
//! passing this filter, so the family check above would not hold; it is
//! also the kernel interface behind many of its recent privilege
//! escalations. `io_uring_setup`, `io_uring_enter` and `io_uring_register`
//! are refused, as container runtimes' default profiles do; runtimes that
//! try it (libuv, for one) fall back to threads.
use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::seccomp::{SeccompError, refusing};

/// The terminal requests refused (the kernel reads `ioctl`'s request as 32
/// bits, so only the low 32 bits of the argument are compared).
pub const REFUSED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// System calls refused whatever their arguments: the keyrings and io_uring.
pub const REFUSED_SYSCALLS: &[i64] = &[
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// The socket families an agent may create; `socket` and `socketpair` with
/// any other domain are refused.
pub const ALLOWED_SOCKET_FAMILIES: &[libc::c_int] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

pub fn program() -> Result<BpfProgram, SeccompError> {
    let rules = REFUSED_IOCTLS
        .iter()
        .map(|req| {
            let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *req)?;
            SeccompRule::new(vec![cond])
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut refused = BTreeMap::from([(libc::SYS_ioctl, rules)]);
    // No rule: the call is refused whatever its arguments.
    refused.extend(REFUSED_SYSCALLS.iter().map(|nr| (*nr, Vec::new())));
    for call in [libc::SYS_socket, libc::SYS_socketpair] {
        refused.insert(call, vec![other_family()?]);
    }
    refusing(refused)
}

/// Matches a domain (the first argument, an `int`) that is none of
/// [`ALLOWED_SOCKET_FAMILIES`]: a rule's conditions must all hold.
fn other_family() -> Result<SeccompRule, SeccompError> {
    let conditions = ALLOWED_SOCKET_FAMILIES
        .iter()
        .map(|family| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *family as u64)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SeccompRule::new(conditions)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forked child applies the filter: TIOCSTI is refused with EPERM
    /// whatever the descriptor, so is every keyring call, a vsock socket and
    /// io_uring; other ioctls and the allowed socket families still reach
    /// the kernel.
    #[test]
    fn tiocsti_keyrings_other_socket_families_and_io_uring_are_refused_and_the_rest_is_not() {
        let prog = program().unwrap();
        // SAFETY: the child only makes system calls and exits with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = (|| {
                    if seccompiler::apply_filter(&prog).is_err() {
                        return 10;
                    }
                    let c: libc::c_char = b'x' as libc::c_char;
                    // SAFETY: ioctl with a pointer to one byte, as TIOCSTI takes.
                    let rc = unsafe { libc::ioctl(0, libc::TIOCSTI, &raw const c) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc != -1 || errno != Some(libc::EPERM) {
                        return 11;
                    }
                    // The high half is not the kernel's: still refused.
                    let wide = (1u64 << 32) | libc::TIOCSTI;
                    // SAFETY: as above, through the raw system call.
                    let rc = unsafe { libc::syscall(libc::SYS_ioctl, 0, wide, &raw const c) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc != -1 || errno != Some(libc::EPERM) {
                        return 12;
                    }
                    // FIONREAD on a pipe is not refused.
                    let mut fds = [0; 2];
                    // SAFETY: pipe fills two descriptors; ioctl writes one int.
                    let mut n: libc::c_int = -1;
                    unsafe {
                        if libc::pipe(fds.as_mut_ptr()) != 0
                            || libc::ioctl(fds[0], libc::FIONREAD, &raw mut n) != 0
                        {
                            return 13;
                        }
                    }
                    // Even naming its own session keyring.
                    // SAFETY: keyctl with integer arguments only.
                    let rc = unsafe {
                        libc::syscall(libc::SYS_keyctl, 0, libc::KEY_SPEC_SESSION_KEYRING, 0)
                    };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc != -1 || errno != Some(libc::EPERM) {
                        return 14;
                    }
                    // A vsock socket (what reaches a VM's host) is refused...
                    // SAFETY: socket takes integers; a returned descriptor is closed.
                    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if fd != -1 || errno != Some(libc::EPERM) {
                        return 15;
                    }
                    // ...whatever the high half of the domain says.
                    let wide = (1u64 << 32) | libc::AF_VSOCK as u64;
                    // SAFETY: as above, through the raw system call.
                    let fd = unsafe { libc::syscall(libc::SYS_socket, wide, libc::SOCK_STREAM, 0) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if fd != -1 || errno != Some(libc::EPERM) {
                        return 16;
                    }
                    // The allowed families are not.
                    for (family, kind) in [
                        (libc::AF_UNIX, libc::SOCK_STREAM),
                        (libc::AF_INET, libc::SOCK_STREAM),
                        (libc::AF_INET6, libc::SOCK_DGRAM),
                        (libc::AF_NETLINK, libc::SOCK_RAW),
                    ] {
                        // SAFETY: as above.
                        let fd = unsafe { libc::socket(family, kind, 0) };
                        if fd < 0 {
                            return 17;
                        }
                        // SAFETY: closes the descriptor just made.
                        unsafe { libc::close(fd) };
                    }
                    let mut pair = [0; 2];
                    // SAFETY: socketpair fills two descriptors.
                    if unsafe {
                        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr())
                    } != 0
                    {
                        return 18;
                    }
                    // No io_uring: its rings would make calls this filter never sees.
                    let mut params = [0u8; 120];
                    // SAFETY: io_uring_setup reads and writes a 120-byte params struct.
                    let rc =
                        unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc != -1 || errno != Some(libc::EPERM) {
                        return 19;
                    }
                    0
                })();
                // SAFETY: leaves the forked child without running the test harness's exit.
                unsafe { libc::_exit(code) }
            }
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            child => {
                let mut status = 0;
                // SAFETY: waits for the child forked above.
                unsafe { libc::waitpid(child, &raw mut status, 0) };
                assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
                assert_eq!(libc::WEXITSTATUS(status), 0, "step that failed (10 + n)");
            }
        }
    }
}
