//! The throwaway setup the battery runs in: a private directory under
//! /run, a daemon of this same binary with its own state dir, cgroup and
//! pins, a deny-everything policy, and the agent launches (under Cordon,
//! and the control run without it). The operator's daemon, policies and
//! audit trail are never touched.
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::control::{client, proto::Request};
use crate::paths::Paths;

pub const AGENT: &str = "cordon-doctor-attack";
const READY: Duration = Duration::from_secs(30);
const AGENT_TIMEOUT: Duration = Duration::from_secs(90);

/// /run/cordon-doctor-<pid>: removed on drop.
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn create() -> anyhow::Result<Workdir> {
        let dir = PathBuf::from(format!("/run/cordon-doctor-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let w = Workdir(dir);
        for sub in ["state", "policies", "secret"] {
            std::fs::create_dir(w.0.join(sub))
                .with_context(|| format!("creating {}/{sub}", w.0.display()))?;
        }
        Ok(w)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cordon doctor: removing {}: {e}", self.0.display());
        }
    }
}

/// Denies every action to the battery's agent, and names the planted
/// secret as a file it must not open (as an operator's `contain.deny` would).
pub fn policy(secret: &Path) -> String {
    format!(
        "agents = [\"{AGENT}\"]\ndefault = \"deny\"\n\n[contain]\ndeny = [\"{}\"]\n",
        secret.display()
    )
}

pub struct Daemon {
    child: Option<Child>,
    state: PathBuf,
    exe: PathBuf,
}

impl Daemon {
    pub fn start(exe: &Path, w: &Workdir, dns_upstream: &str) -> anyhow::Result<Daemon> {
        let log = std::fs::File::create(w.0.join("daemon.log"))?;
        let child = Command::new(exe)
            .arg("daemon")
            .arg("--state-dir")
            .arg(w.0.join("state"))
            .arg("--policies")
            .arg(w.0.join("policies"))
            .args(["--dns-upstream", dns_upstream])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the throwaway daemon")?;
        let mut d = Daemon {
            child: Some(child),
            state: w.0.join("state"),
            exe: exe.to_path_buf(),
        };
        d.wait_ready(&w.0.join("daemon.log"))?;
        Ok(d)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    fn wait_ready(&mut self, log: &Path) -> anyhow::Result<()> {
        let socket = Paths::for_state_dir(&self.state).socket;
        let deadline = Instant::now() + READY;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                self.child = None;
                bail!(
                    "the throwaway daemon exited {status}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if client::call(&socket, &Request::Status, Duration::from_secs(2)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the throwaway daemon was not ready after {READY:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // Ends with the next lines either way; SIGKILL follows.
                if nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                )
                .is_err()
                {
                    eprintln!("cordon doctor: signalling the throwaway daemon failed");
                }
            }
            if wait_bounded(&mut c, Duration::from_secs(10)).is_none() {
                eprintln!("cordon doctor: the throwaway daemon ignored SIGTERM; killing it");
                if let Err(e) = c.kill().and_then(|()| c.wait().map(|_| ())) {
                    eprintln!("cordon doctor: killing the throwaway daemon: {e}");
                }
            }
        }
        // Pins and cgroup of the throwaway namespace, as `cordon cleanup` does.
        match Command::new(&self.exe)
            .arg("cleanup")
            .arg("--state-dir")
            .arg(&self.state)
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cordon doctor: cleanup of the throwaway daemon: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("cordon doctor: cleanup of the throwaway daemon: {e}"),
        }
    }
}

fn wait_bounded(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        match c.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
    None
}

/// The probe, either as a root agent under the daemon at `state` or, for
/// the control run, directly. `inherited` becomes its descriptor 3, as a
/// careless parent would leave it; `cordon run` must close it.
pub fn probe_command(exe: &Path, state: Option<&Path>, config: &str, inherited: i32) -> Command {
    let mut cmd = Command::new(exe);
    if let Some(state) = state {
        cmd.arg("run")
            .args(["--agent", AGENT, "--state-dir"])
            .arg(state)
            // Root keeps CAP_NET_RAW and every other capability: the
            // strongest attacker the battery can field.
            .args(["--allow-root", "--"])
            .arg(exe);
    }
    cmd.args(["doctor-probe", config])
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER")
        .current_dir("/")
        .stdin(Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; this runs in the child
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if inherited != 3 && libc::dup2(inherited, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec; clear it either way.
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Runs `cmd` to completion (killed after a bound), stdout and stderr
/// captured to files in `dir`; returns them together.
pub fn run_captured(mut cmd: Command, dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let out_path = dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path)?;
    let mut child = cmd
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("launching the {name} probe"))?;
    if wait_bounded(&mut child, AGENT_TIMEOUT).is_none() {
        child.kill()?;
        child.wait()?;
        bail!("the {name} probe did not finish within {AGENT_TIMEOUT:?}");
    }
    Ok(std::fs::read(&out_path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_denies_everything_and_names_the_secret() {
        let p = policy(Path::new("/run/d/secret/token"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("attack.toml"), &p).unwrap();
        let set = cordon_policy::PolicySet::load_dir(dir.path()).unwrap();
        assert!(!set.version().is_empty());
        assert!(p.contains("default = \"deny\""));
        assert!(p.contains("deny = [\"/run/d/secret/token\"]"));
    }
}
