//! What the kernel says about a running agent: the cgroup its process is in, whether that
//! cgroup is frozen or still has processes, and every pid under it. Read from cgroupfs and
//! procfs, not from the daemon, so kill-switch tests check the effect rather than the claim.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use crate::cgroup::TestCgroupRoot;
use crate::daemon::Daemon;
use crate::error::{Error, IoContext, Result};
use crate::process::{wait_child, wait_until};

/// The cgroup directory process `pid` is in, from `/proc/PID/cgroup` (cgroup2 line `0::/...`).
pub fn cgroup_of_pid(pid: u32) -> Result<PathBuf> {
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).ctx(|| format!("read {file}"))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Error::Setup(format!("{file} has no cgroup2 line: {text:?}")))?;
    let root = TestCgroupRoot::discover()?;
    Ok(root.mount().join(rel.trim_start_matches('/')))
}

/// A `key value` field of `cgroup.events` (`frozen`, `populated`).
fn event(dir: &Path, key: &str) -> Result<bool> {
    let file = dir.join("cgroup.events");
    let text = std::fs::read_to_string(&file).ctx(|| format!("read {}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(|v| v.trim() == "1")
        .ok_or_else(|| Error::Setup(format!("{} has no {key} line", file.display())))
}

/// Whether the kernel reports the cgroup as frozen (every task in it stopped).
pub fn is_frozen(dir: &Path) -> Result<bool> {
    event(dir, "frozen")
}

/// Whether any process is left in the cgroup or below it; a removed cgroup has none.
pub fn is_populated(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    event(dir, "populated")
}

/// Wait (bounded) until the frozen state of `dir` is `want`.
pub fn wait_frozen(dir: &Path, want: bool, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("{} to be frozen={want}", dir.display()),
        timeout,
        || is_frozen(dir).is_ok_and(|f| f == want),
    )
}

/// Every pid in `dir` and its descendant cgroups.
pub fn pids_recursive(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let procs = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&procs).ctx(|| format!("read {}", procs.display()))?;
    out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    for entry in std::fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(pids_recursive(&entry.path())?);
        }
    }
    Ok(out)
}

/// Whether `pid` is still a process that can run (present and not a zombie).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name, which may itself hold spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// One row of `cordon ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsRow {
    pub agent: String,
    pub instance: String,
    pub state: String,
}

/// `cordon ps`, parsed; a failing command is an error carrying its stderr.
pub fn ps(daemon: &Daemon) -> Result<Vec<PsRow>> {
    let out = daemon.cordon(&["ps"])?;
    if !out.status.success() {
        return Err(Error::Command {
            command: "cordon ps".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(parse_ps(&String::from_utf8_lossy(&out.stdout)))
}

/// Rows of `cordon ps` text: header skipped, columns `AGENT INSTANCE STATE ...`.
pub fn parse_ps(text: &str) -> Vec<PsRow> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(PsRow {
                agent: f.next()?.to_owned(),
                instance: f.next()?.to_owned(),
                state: f.next()?.to_owned(),
            })
        })
        .collect()
}

/// A started agent (`cordon run` execs into it, so the child's pid is the agent's), SIGKILLed
/// and reaped on drop so a failing test leaves no process behind.
#[derive(Debug)]
pub struct RunningAgent {
    child: Option<Child>,
    pid: u32,
}

impl RunningAgent {
    pub fn new(child: Child) -> Self {
        let pid = child.id();
        Self {
            child: Some(child),
            pid,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The instance cgroup the agent runs in (waits until `cordon run` has moved it there).
    pub fn instance_cgroup(&self, under: &Path) -> Result<PathBuf> {
        let mut found = None;
        wait_until(
            &format!(
                "pid {} to enter a cgroup under {}",
                self.pid,
                under.display()
            ),
            Duration::from_secs(10),
            || {
                found = cgroup_of_pid(self.pid)
                    .ok()
                    .filter(|c| c.starts_with(under));
                found.is_some()
            },
        )?;
        found.ok_or_else(|| Error::Setup("instance cgroup vanished".into()))
    }

    /// Wait (bounded) for the agent to exit; its output if it did.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<Output>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let Some(status) = wait_child(child, timeout)? else {
            return Ok(None);
        };
        let mut child = self
            .child
            .take()
            .ok_or_else(|| Error::Setup("no child".into()))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = std::io::Read::read_to_end(&mut o, &mut stdout);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_end(&mut e, &mut stderr);
        }
        Ok(Some(Output {
            status,
            stdout,
            stderr,
        }))
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_read_by_column() {
        let text = "AGENT INSTANCE STATE UPTIME ALLOWED DENIED COST PIDS\n\
                    bot 1a2b killed 3s 4 0 $0.0000 12,13\n\
                    bot/sub 9f running 1s 0 0 $0.0000\n";
        assert_eq!(
            parse_ps(text),
            [
                PsRow {
                    agent: "bot".into(),
                    instance: "1a2b".into(),
                    state: "killed".into()
                },
                PsRow {
                    agent: "bot/sub".into(),
                    instance: "9f".into(),
                    state: "running".into()
                }
            ]
        );
    }

    #[test]
    fn this_process_is_alive_and_in_a_cgroup() {
        assert!(is_alive(std::process::id()));
        assert!(cgroup_of_pid(std::process::id()).is_ok());
    }
}
