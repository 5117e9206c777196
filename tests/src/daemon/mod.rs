//! Driving the real `cordon` binary: a daemon per test with its own state dir, plus the client
//! subcommands and `cordon run` for agents. Written against the CLI contract:
//!
//! ```text
//! cordon daemon --state-dir D --policies P --dns-upstream 127.0.0.1:N [--upstream-ca F] [--log-json]
//! cordon status --state-dir D          (exit 0 once the daemon serves)
//! cordon cleanup --state-dir D         (after the daemon is gone)
//! cordon run --agent NAME --state-dir D --user nobody -- CMD...
//! ```

mod args;
mod opts;
mod paths;
mod policy_dir;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use opts::DaemonOpts;
pub use paths::{CORDON_BIN_ENV, cordon_bin, workspace_root};
pub use policy_dir::PolicyDir;

use crate::error::{Error, IoContext, Result};
use crate::process::{run_with_timeout, wait_child};
use args::{agent_args, client_args};

/// How long the daemon gets to answer `cordon status`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound for client subcommands.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Set to keep the state dir (with daemon.log) of every test for inspection.
pub const KEEP_STATE_ENV: &str = "CORDON_E2E_KEEP_STATE";
/// The unprivileged user agents run as.
pub const AGENT_USER: &str = "nobody";

/// A running daemon. Drop: SIGTERM, bounded wait (then SIGKILL), `cordon cleanup`, remove the
/// state dir (kept when [`KEEP_STATE_ENV`] is set; the log tail is printed if the test panicked).
#[derive(Debug)]
pub struct Daemon {
    opts: DaemonOpts,
    bin: PathBuf,
    state: Option<tempfile::TempDir>,
    state_dir: PathBuf,
    child: Option<Child>,
}

/// A stopped daemon; dropping it lets the daemon run again.
#[derive(Debug)]
pub struct Paused(Pid);

impl Drop for Paused {
    fn drop(&mut self) {
        if let Err(e) = kill(self.0, Signal::SIGCONT) {
            eprintln!("SIGCONT daemon {}: {e}", self.0);
        }
    }
}

impl Daemon {
    /// Spawn the daemon and wait (at most [`READY_TIMEOUT`]) until `cordon status` succeeds.
    pub fn start(opts: DaemonOpts) -> Result<Self> {
        let bin = opts.bin.clone().unwrap_or_else(cordon_bin);
        if !bin.is_file() {
            return Err(Error::Setup(format!(
                "cordon binary not found at {} (set {CORDON_BIN_ENV})",
                bin.display()
            )));
        }
        let state = tempfile::Builder::new()
            .prefix("cordon-e2e-state-")
            .tempdir()
            .ctx(|| "create daemon state dir".into())?;
        let state_dir = state.path().to_owned();
        let mut daemon = Self {
            opts,
            bin,
            state: Some(state),
            state_dir,
            child: None,
        };
        daemon.spawn_and_wait()?;
        Ok(daemon)
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        let log = self.log_path();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .ctx(|| format!("open {}", log.display()))?;
        let err = out.try_clone().ctx(|| format!("dup {}", log.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("daemon")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--policies")
            .arg(&self.opts.policies)
            .arg("--dns-upstream")
            .arg(self.opts.dns_upstream.to_string());
        if let Some(ca) = &self.opts.upstream_ca {
            cmd.arg("--upstream-ca").arg(ca);
        }
        if self.opts.log_json {
            cmd.arg("--log-json");
        }
        cmd.args(&self.opts.extra_args)
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .ctx(|| format!("spawn {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().ctx(|| "poll daemon".into())?
            {
                self.child = None;
                return Err(Error::Setup(format!(
                    "daemon exited {status} before it was ready; log:\n{}",
                    self.log_tail(40)
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: format!("`cordon status` to succeed; log:\n{}", self.log_tail(40)),
                    after: READY_TIMEOUT,
                });
            }
            let probe = self.cordon_with_timeout(&["status"], left.min(Duration::from_secs(5)));
            if probe.is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// File receiving the daemon's stdout and stderr (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("daemon.log")
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Wait (bounded) until the daemon log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        crate::process::wait_until(
            &format!("daemon log to contain {needle:?}"),
            timeout,
            || self.log().contains(needle),
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP the daemon until the guard drops (SIGCONT): what it reads
    /// from the kernel waits for it, as on a host too loaded to run it.
    pub fn pause(&self) -> Result<Paused> {
        let pid = self
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| Error::Setup("the daemon is not running".into()))?;
        let pid = Pid::from_raw(pid);
        kill(pid, Signal::SIGSTOP)
            .map_err(std::io::Error::from)
            .ctx(|| "SIGSTOP daemon".into())?;
        Ok(Paused(pid))
    }

    /// SIGKILL the daemon and reap it: simulates a crash (nothing gets cleaned up by it).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().ctx(|| "SIGKILL daemon".into())?;
            child.wait().ctx(|| "reap daemon".into())?;
        }
        Ok(())
    }

    /// SIGTERM, wait at most 10 s, SIGKILL if still alive. Returns the exit status if it had one.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let status = wait_child(&mut child, STOP_TIMEOUT)?;
        if status.is_none() {
            let _ = child.kill();
            child.wait().ctx(|| "reap daemon".into())?;
        }
        Ok(status)
    }

    /// Stop (if running) and start again on the same state dir and options.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn_and_wait()
    }

    /// Run a client subcommand with `--state-dir` added (before any `--`), bounded by
    /// [`CLIENT_TIMEOUT`]. E.g. `d.cordon(&["kill", "deploy-bot"])`.
    pub fn cordon(&self, args: &[&str]) -> Result<Output> {
        self.cordon_with_timeout(args, CLIENT_TIMEOUT)
    }

    pub fn cordon_with_timeout(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        run_with_timeout(&mut self.cordon_command(args), timeout)
    }

    /// The `cordon ARGS --state-dir D` command, unstarted.
    pub fn cordon_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(client_args(args, &self.state_dir));
        cmd
    }

    /// `cordon run --agent NAME --state-dir D --user nobody -- CMD...`, working dir `/`
    /// (nobody cannot read most test directories), unstarted.
    pub fn agent(&self, name: &str, cmd: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(agent_args(name, &self.state_dir, cmd))
            .current_dir("/");
        c
    }

    /// Run an agent to completion (killed after `timeout`): exit status, stdout, stderr.
    pub fn run_agent(&self, name: &str, cmd: &[&str], timeout: Duration) -> Result<Output> {
        run_with_timeout(&mut self.agent(name, cmd), timeout)
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("cordon-e2e: stopping daemon: {e}");
        }
        match self.cordon_with_timeout(&["cleanup"], Duration::from_secs(20)) {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cordon-e2e: `cordon cleanup` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cordon-e2e: `cordon cleanup`: {e}"),
        }
        if std::thread::panicking() {
            eprintln!(
                "---- daemon log tail ({}) ----\n{}\n----",
                self.log_path().display(),
                self.log_tail(80)
            );
        }
        if std::env::var_os(KEEP_STATE_ENV).is_some()
            && let Some(state) = self.state.take()
        {
            eprintln!("cordon-e2e: kept state dir {}", state.keep().display());
        }
    }
}

/// `text` without the colour codes the daemon writes into its log even when it is a file
/// (CSI sequences: ESC `[`, parameters, a final letter).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn colour_codes_are_removed_from_log_lines() {
        assert_eq!(
            strip_ansi("\x1b[2m12:00\x1b[0m \x1b[32m INFO\x1b[0m policy loaded"),
            "12:00  INFO policy loaded"
        );
    }
}
