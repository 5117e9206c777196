//! A host process whose command line holds a run's `process-cmdline`
//! marker, as an operator's `mysql -pPASSWORD` would hold a password. It
//! runs outside every agent for the length of one run and is killed after.
//! `/proc/PID/cmdline` needs no ptrace access, so only a `/proc` that hides
//! the process keeps the agent from it (`contain::procfs`).
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

pub struct Decoy(Child);

impl Decoy {
    /// `sleep`, named `marker` (its argv[0]), for longer than a run takes.
    pub fn start(marker: &str) -> anyhow::Result<Decoy> {
        let child = Command::new("sleep")
            .arg0(marker)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the decoy process (sleep)")?;
        Ok(Decoy(child))
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        // Best effort: a decoy left behind is a sleeping process that holds
        // a marker, not a security property; it ends by itself.
        if let Err(e) = self.0.kill() {
            tracing::debug!("stopping the decoy process: {e}");
        }
        if let Err(e) = self.0.wait() {
            tracing::debug!("reaping the decoy process: {e}");
        }
    }
}
