//! A contained agent lists only its own processes.
//!
//! Landlock already keeps an agent from ptrace and from the files of
//! `/proc/PID` that need ptrace access (`environ`, `mem`, `fd`, ...), but
//! `cmdline`, `status` and the listing of `/proc` need none: an agent could
//! read the command line of any process on the host, and operators do pass
//! secrets there (`mysql -pPASSWORD`, `curl -H "Authorization: ..."`).
//!
//! `cordon run` therefore gives a contained agent a mount namespace of its
//! own whose `/proc` is a fresh procfs instance mounted with
//! `hidepid=ptraceable`: a process there exists only for a reader that may
//! ptrace it. Landlock refuses ptrace from inside a domain to anything
//! outside it, so the agent sees exactly its own tree (and any sub-agents,
//! whose domains nest in its own), whatever uid the rest of the host runs
//! as. Non-process files (`/proc/meminfo`, `/proc/sys`, ...) stay as they
//! were.
//!
//! Not `hidepid=invisible`: that one lets members of the instance's `gid=`
//! group (root's group unless set) see every process, and a real-root
//! agent is in it. `ptraceable` asks only the ptrace check (Linux 5.8,
//! older than any kernel with Landlock).
//!
//! Mounting a procfs of the host's pid namespace takes CAP_SYS_ADMIN over
//! it, so this is done while `cordon run` is still real root, before the
//! uid change, the capability drop and the user namespace. The agent holds
//! no CAP_SYS_ADMIN in the host's user namespace afterwards, so it can
//! neither unmount the instance nor remount it without `hidepid`.
use std::path::{Path, PathBuf};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
};

const PROC: &str = "/proc";
const HIDDEN: &str = "hidepid=ptraceable";

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("{step}: {source}")]
    Namespace {
        step: &'static str,
        source: nix::Error,
    },
    #[error("mounting a procfs with {HIDDEN} over {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Moves the calling thread into a mount namespace of its own (which mounts
/// from the host still reach, and none leave) and hides every process the
/// caller, once contained, may not ptrace. Needs real root.
pub fn hide_other_processes() -> Result<(), ProcfsError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|source| ProcfsError::Namespace {
        step: "unshare(mount namespace)",
        source,
    })?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|source| ProcfsError::Namespace {
        step: "making mounts receive-only",
        source,
    })?;
    mount(
        Some("proc"),
        PROC,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(HIDDEN),
    )
    .map_err(|source| ProcfsError::Mount {
        path: PathBuf::from(PROC),
        source,
    })
}

/// Whether `/proc`, as the calling process sees it, already hides other
/// processes: a launch from inside an agent inherits its parent's instance.
pub fn already_hidden() -> Result<bool, ProcfsError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| ProcfsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(proc_hides_pids(&text))
}

/// The topmost mount at `/proc` in a mountinfo text (listed last: a mount
/// comes after the one it covers) is a procfs whose super options hide pids.
fn proc_hides_pids(mountinfo: &str) -> bool {
    mountinfo
        .lines()
        .rev()
        .filter_map(|line| {
            let (fields, tail) = line.split_once(" - ")?;
            let mount_point = fields.split(' ').nth(4)?;
            (mount_point == PROC).then_some(tail)
        })
        .next()
        .is_some_and(|tail| {
            let mut parts = tail.split(' ');
            let fstype = parts.next();
            let super_opts = parts.nth(1).unwrap_or_default();
            fstype == Some("proc") && super_opts.split(',').any(|o| o == HIDDEN)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";

    #[test]
    fn the_hosts_proc_does_not_hide_pids() {
        assert!(!proc_hides_pids(HOST));
    }

    #[test]
    fn a_ptraceable_instance_on_top_of_proc_hides_them() {
        let agent = format!(
            "{HOST}301 23 0:77 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw,hidepid=ptraceable\n"
        );
        assert!(proc_hides_pids(&agent));
    }

    #[test]
    fn an_invisible_instance_does_not_count_since_its_group_sees_everything() {
        let agent = format!("{HOST}301 23 0:77 / /proc rw - proc proc rw,hidepid=invisible\n");
        assert!(!proc_hides_pids(&agent));
    }

    #[test]
    fn only_the_topmost_proc_mount_counts() {
        let covered = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
             23 22 0:77 / /proc rw - proc proc rw,hidepid=ptraceable\n\
             301 23 0:21 / /proc rw - proc proc rw\n";
        assert!(!proc_hides_pids(covered));
        let elsewhere =
            format!("{HOST}301 22 0:77 / /mnt/proc rw - proc proc rw,hidepid=ptraceable\n");
        assert!(!proc_hides_pids(&elsewhere));
    }
}
