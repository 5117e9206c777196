//! The capabilities a real-root agent keeps (hosts that forbid user
//! namespaces, `root = "landlock-only"`). Landlock and the cgroup hooks hold
//! its files, sockets and processes, but root's capabilities reach further
//! than those: `CAP_SYS_TIME` moves the clock that schedules and time
//! conditions read, `CAP_AUDIT_CONTROL` switches off the audit stream that
//! carries Landlock's refusals to the trail, `CAP_SYS_BOOT` reboots or
//! `kexec`s the host, `CAP_SYS_NICE` starves the daemon, `CAP_MKNOD` makes
//! device nodes. A list of what to drop misses whatever it does not name,
//! including capabilities newer than this build; so the agent keeps only
//! what ordinary root work inside its own directories needs, and the
//! bounding set loses every other capability the running kernel has.
use caps::{CapSet, Capability, CapsHashSet};

/// Kept: acting on its own files (the mode, owner and xattr calls
/// themselves are refused by `root_seccomp`), signalling its own processes
/// (Landlock scopes signals to its domain), changing uid and gid to drop
/// privileges, binding ports below 1024, and `chroot` (Landlock's rules
/// follow the file hierarchy, not the root directory).
pub const ROOT_WORK: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
];

/// Where the kernel says how many capabilities it has.
const LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

#[derive(Debug, thiserror::Error)]
pub enum RootCapsError {
    #[error("reading {LAST_CAP}: {0}")]
    LastCap(String),
    #[error("dropping capability {index} from the bounding set: {source}")]
    Bounding {
        index: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("setting the {set:?} capability set: {message}")]
    Set { set: CapSet, message: String },
}

/// The bounding-set indexes to drop on a kernel whose last capability is
/// `last`: all of them but [`ROOT_WORK`].
pub fn bounding_drops(last: u32) -> Vec<u32> {
    (0..=last)
        .filter(|i| !ROOT_WORK.iter().any(|c| u32::from(c.index()) == *i))
        .collect()
}

/// Leaves this process (about to exec the agent as root) with [`ROOT_WORK`]
/// only. The bounding set goes first: dropping from it needs
/// `CAP_SETPCAP`, which the other sets then lose. Root's capabilities after
/// exec are its bounding set, so that is the set that holds.
pub fn keep_only_root_work() -> Result<(), RootCapsError> {
    let last: u32 = std::fs::read_to_string(LAST_CAP)
        .map_err(|e| RootCapsError::LastCap(e.to_string()))?
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| RootCapsError::LastCap(e.to_string()))?;
    for index in bounding_drops(last) {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) };
        if rc != 0 {
            return Err(RootCapsError::Bounding {
                index,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    let keep: CapsHashSet = ROOT_WORK.iter().copied().collect();
    // Effective before permitted: the kernel wants effective within permitted.
    let sets = [
        (CapSet::Ambient, CapsHashSet::new()),
        (CapSet::Inheritable, CapsHashSet::new()),
        (CapSet::Effective, keep.clone()),
        (CapSet::Permitted, keep),
    ];
    for (set, value) in sets {
        caps::set(None, set, &value).map_err(|e| RootCapsError::Set {
            set,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_but_root_work_leaves_the_bounding_set_newer_ones_included() {
        let drops = bounding_drops(63);
        assert_eq!(drops.len(), 64 - ROOT_WORK.len());
        for cap in [
            Capability::CAP_SYS_TIME,
            Capability::CAP_SYS_BOOT,
            Capability::CAP_AUDIT_CONTROL,
            Capability::CAP_SYS_NICE,
            Capability::CAP_MKNOD,
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_BPF,
            Capability::CAP_SETPCAP,
        ] {
            assert!(drops.contains(&u32::from(cap.index())), "{cap} is kept");
        }
        assert!(
            drops.contains(&63),
            "a capability newer than this build is kept"
        );
        for cap in ROOT_WORK {
            assert!(!drops.contains(&u32::from(cap.index())), "{cap} is dropped");
        }
    }
}
