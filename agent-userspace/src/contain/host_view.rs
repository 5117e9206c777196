//! A contained agent's own view of the host: its own processes in /proc,
//! its own System V IPC and POSIX message queues, its own /dev/shm and
//! pseudo-terminals.
//!
//! Landlock already keeps an agent from ptrace and from the files of
//! `/proc/PID` that need ptrace access (`environ`, `mem`, `fd`, ...), but
//! `cmdline`, `status` and the listing of `/proc` need none: an agent could
//! read the command line of any process on the host, and operators do pass
//! secrets there (`mysql -pPASSWORD`, `curl -H "Authorization: ..."`). No
//! path rule covers System V shared memory, semaphores and message queues
//! either (they are checked against their modes only, and an agent running
//! as their owner, root included, may attach them), and `/dev/shm`, where
//! POSIX shared memory lives, is on every agent's writable list.
//!
//! `cordon run` therefore moves a contained agent into a mount namespace and
//! an IPC namespace of its own:
//! - `/proc` is a fresh procfs instance mounted with `hidepid=ptraceable`: a
//!   process there exists only for a reader that may ptrace it. Landlock
//!   refuses ptrace from inside a domain to anything outside it, so the
//!   agent sees exactly its own tree (and any sub-agents, whose domains nest
//!   in its own), whatever uid the rest of the host runs as. Non-process
//!   files (`/proc/meminfo`, `/proc/sys`, ...) stay as they were. Not
//!   `hidepid=invisible`: that one lets members of the instance's `gid=`
//!   group (root's group unless set) see every process, and a real-root
//!   agent is in it. `ptraceable` asks only the ptrace check (Linux 5.8,
//!   older than any kernel with Landlock).
//! - `/dev/shm` is an empty tmpfs of its own, shared with its sub-agents.
//! - `/dev/pts` is a devpts instance of its own: the operator's other
//!   terminals (its other logins, whose pending input an agent running as
//!   their owner could read, keystrokes and all) are not there to open. The
//!   terminal the agent was started on stays its stdio and `/dev/tty`.
//! - System V IPC objects and POSIX message queues are the new IPC
//!   namespace's: none of the host's exist there.
//!
//! This takes CAP_SYS_ADMIN over the host's namespaces, so it is done while
//! `cordon run` is still real root, before the uid change, the capability
//! drop and the user namespace. The agent holds no CAP_SYS_ADMIN in the
//! host's user namespace afterwards (and Landlock forbids mounts), so it can
//! neither unmount these nor remount them.
use std::path::{Path, PathBuf};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
};

use crate::mountinfo;

const PROC: &str = "/proc";
const HIDDEN: &str = "hidepid=ptraceable";
const SHM: &str = "/dev/shm";
const PTS: &str = "/dev/pts";

#[derive(Debug, thiserror::Error)]
pub enum HostViewError {
    #[error("{step}: {source}")]
    Namespace {
        step: &'static str,
        source: nix::Error,
    },
    #[error("mounting {what} over {path}: {source}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Moves the calling thread into mount and IPC namespaces of its own (the
/// mount namespace still receives the host's new mounts, and sends none)
/// and gives it the private /proc, /dev/pts and /dev/shm above. Needs real
/// root.
pub fn enter() -> Result<(), HostViewError> {
    let ns = |step: &'static str| move |source| HostViewError::Namespace { step, source };
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC)
        .map_err(ns("unshare(mount and IPC namespaces)"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(ns("making mounts receive-only"))?;
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), PROC, Some("proc"), proc_flags, Some(HIDDEN)).map_err(|source| {
        HostViewError::Mount {
            what: "a procfs with hidepid=ptraceable",
            path: PathBuf::from(PROC),
            source,
        }
    })?;
    // The agent's own pseudo-terminals: /dev/ptmx opens the devpts mounted
    // at /dev/pts next to it (Linux 4.7), so the ptys it makes are in this
    // instance, and the operator's other terminals are in none it can name.
    // The terminal it was started on stays its stdio and /dev/tty.
    mount(
        Some("devpts"),
        PTS,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|source| HostViewError::Mount {
        what: "a devpts instance of its own",
        path: PathBuf::from(PTS),
        source,
    })?;
    // A host without /dev/shm has no POSIX shared memory to keep apart.
    if Path::new(SHM).is_dir() {
        // Not noexec: the host's /dev/shm usually is not, and programs may
        // map what they put there executable.
        let shm_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(
            Some("tmpfs"),
            SHM,
            Some("tmpfs"),
            shm_flags,
            Some("mode=1777"),
        )
        .map_err(|source| HostViewError::Mount {
            what: "an empty tmpfs",
            path: PathBuf::from(SHM),
            source,
        })?;
    }
    Ok(())
}

/// Whether the calling process already has such a view (its `/proc` hides
/// other processes): a launch from inside an agent inherits its parent's.
pub fn already_entered() -> Result<bool, HostViewError> {
    let text = std::fs::read_to_string(mountinfo::PATH).map_err(|source| HostViewError::Read {
        path: PathBuf::from(mountinfo::PATH),
        source,
    })?;
    Ok(proc_hides_pids(&text))
}

/// The topmost mount at `/proc` (listed last) is a procfs whose super
/// options hide pids.
fn proc_hides_pids(text: &str) -> bool {
    mountinfo::mounts(text)
        .rev()
        .find(|m| m.point == PROC)
        .is_some_and(|m| m.fstype == "proc" && m.super_opts.split(',').any(|o| o == HIDDEN))
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
