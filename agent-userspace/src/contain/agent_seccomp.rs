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
use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::seccomp::{SeccompError, refusing};

/// The terminal requests refused (the kernel reads `ioctl`'s request as 32
/// bits, so only the low 32 bits of the argument are compared).
pub const REFUSED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// The keyring system calls, refused whatever their arguments.
pub const KEYRING_SYSCALLS: &[i64] = &[libc::SYS_add_key, libc::SYS_keyctl, libc::SYS_request_key];

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
    refused.extend(KEYRING_SYSCALLS.iter().map(|nr| (*nr, Vec::new())));
    refusing(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forked child applies the filter: TIOCSTI is refused with EPERM
    /// whatever the descriptor, so is every keyring call, and other ioctls
    /// still reach the kernel.
    #[test]
    fn tiocsti_and_the_keyrings_are_refused_and_other_ioctls_are_not() {
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
