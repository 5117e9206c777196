//! The one thing Landlock (ABI 7) and file ownership leave a real root
//! agent: changing the metadata of files it owns, which are all of the
//! host's root-owned files, Cordon's among them. `chmod 666` on a policy
//! file, or `chown` on the vault key, needs neither a write grant nor a
//! capability the agent keeps. So when a root agent must run without a
//! user namespace, these system calls are refused outright.
//!
//! A mapped root agent (the normal case) does not need this: on the host it
//! owns nothing of anyone else's.
use seccompiler::BpfProgram;

use super::seccomp::{SeccompError, refusing};

/// Mode, owner and extended-attribute changes, every variant. Numbers
/// newer than the libc crate knows are spelled out (x86_64 and aarch64
/// share them).
const METADATA_SYSCALLS: &[i64] = &[
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    452, // fchmodat2 (6.6)
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    463, // setxattrat (6.13)
    466, // removexattrat (6.13)
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chmod,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chown,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lchown,
];

pub fn program() -> Result<BpfProgram, SeccompError> {
    refusing(
        METADATA_SYSCALLS
            .iter()
            .map(|nr| (*nr, Vec::new()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_compiles_for_this_architecture() {
        let prog = super::program().unwrap();
        assert!(!prog.is_empty());
    }
}
