//! Freezing a cgroup subtree: write `cgroup.freeze`, then wait for the
//! kernel to confirm through `cgroup.events` (`frozen 1`). The write alone
//! only requests the freeze; tasks stop at their next return to user space.
use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::CgroupError;

/// Bounded wait for the kernel's confirmation.
pub const FREEZE_WAIT: Duration = Duration::from_secs(2);

pub fn freeze(cgroup: &Path) -> Result<(), CgroupError> {
    set_frozen(cgroup, true)
}

pub fn thaw(cgroup: &Path) -> Result<(), CgroupError> {
    set_frozen(cgroup, false)
}

fn set_frozen(cgroup: &Path, frozen: bool) -> Result<(), CgroupError> {
    let file = cgroup.join("cgroup.freeze");
    std::fs::write(&file, if frozen { "1" } else { "0" }).map_err(|e| CgroupError::io(&file, e))?;
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        if is_frozen(cgroup)? == frozen {
            return Ok(());
        }
        if start.elapsed() > FREEZE_WAIT {
            return Err(CgroupError::FreezeTimeout {
                path: cgroup.to_path_buf(),
                waited_ms: FREEZE_WAIT.as_millis() as u64,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Reads `frozen` from `cgroup.events`.
pub fn is_frozen(cgroup: &Path) -> Result<bool, CgroupError> {
    Ok(events_flag(cgroup, "frozen")?.unwrap_or(false))
}

/// Reads `populated` from `cgroup.events`: does the subtree hold any task?
pub fn is_populated(cgroup: &Path) -> Result<bool, CgroupError> {
    Ok(events_flag(cgroup, "populated")?.unwrap_or(false))
}

fn events_flag(cgroup: &Path, key: &str) -> Result<Option<bool>, CgroupError> {
    let file = cgroup.join("cgroup.events");
    let text = std::fs::read_to_string(&file).map_err(|e| CgroupError::io(&file, e))?;
    Ok(text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim() == "1")
    }))
}

/// Kills every task in the subtree: `cgroup.kill` where the kernel has it
/// (5.14+), otherwise SIGKILL to every pid listed.
pub fn kill_all(cgroup: &Path) -> Result<(), CgroupError> {
    let file = cgroup.join("cgroup.kill");
    if file.exists() {
        return std::fs::write(&file, "1").map_err(|e| CgroupError::io(&file, e));
    }
    for pid in super::tree::pids_recursive(cgroup)? {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    Ok(())
}
