//! What every step works with: the narrator, the running world, and shortcuts that show a
//! command, run it (bounded) and show its output.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Context;

use super::agent::{AGENT_TIMEOUT, Curl, HttpResult};
use super::narrate::Narrator;
use super::probe::ProbeBin;
use super::world::{Layout, World};
use crate::process::run_with_timeout;

/// Features of the `cordon` binary under demonstration, probed at start.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub vault: bool,
    pub audit: bool,
}

impl Features {
    pub fn probe(cordon: &std::path::Path) -> Self {
        let helps = |sub: &str| {
            run_with_timeout(
                Command::new(cordon).args([sub, "--help"]),
                Duration::from_secs(10),
            )
            .is_ok_and(|o| o.status.success())
        };
        Self {
            vault: helps("vault"),
            audit: helps("audit"),
        }
    }
}

#[derive(Debug)]
pub struct Ctx {
    pub n: Narrator,
    pub w: World,
    pub layout: Layout,
    pub features: Features,
    pub probe: ProbeBin,
    pub cordon: PathBuf,
}

impl Ctx {
    /// Show and run `cordon ARGS` against the demo daemon.
    pub fn cordon(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.w.daemon.cordon_command(args);
        self.run_shown(&mut cmd, Duration::from_secs(30))
    }

    /// Show and run `cmd`, then show what it printed.
    pub fn run_shown(&self, cmd: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
        self.n.command(cmd);
        let out = run_with_timeout(cmd, timeout)
            .with_context(|| format!("run `{}`", super::narrate::describe(cmd)))?;
        self.n.output(&out);
        Ok(out)
    }

    /// `cordon run --agent AGENT -- curl ...`, shown, run, and parsed.
    pub fn agent_curl(&self, agent: &str, curl: &Curl) -> anyhow::Result<HttpResult> {
        let argv = curl.argv();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut cmd = self.w.daemon.agent(agent, &argv);
        let out = self.run_shown(&mut cmd, AGENT_TIMEOUT)?;
        Ok(HttpResult::parse(out))
    }

    /// `cordon run --agent AGENT -- CMD...`, shown and run.
    pub fn agent(&self, agent: &str, argv: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.w.daemon.agent(agent, argv);
        self.run_shown(&mut cmd, AGENT_TIMEOUT)
    }

    /// The probe executable, as a string argument.
    pub fn probe_path(&self) -> String {
        self.probe.path().display().to_string()
    }
}

/// First line of `out`'s stdout, trimmed (for short details in PASS/FAIL lines).
pub fn first_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .chain(err.lines())
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}
