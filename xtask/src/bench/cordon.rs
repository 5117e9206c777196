//! Cordon under test: the release daemon with its own state dir, a policy
//! that allows the bench traffic, and `cordon run` to put a load generator
//! inside an agent cgroup. Stopping the daemon also runs `cordon cleanup`
//! (programs, pins, cgroups).
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{certs::Certs, free_port, proc::Guard};

/// The agent the load generators run as; kill rounds use `bench-kill-N`.
pub const AGENT: &str = "bench";

/// Loopback is SSRF-guarded: only a `cidrs` rule naming it lets the bench
/// traffic through. Every HTTP request is allowed.
const POLICY: &str = r#"agents = ["bench", "bench-*"]
default = "deny"

[[rule]]
id = "bench-loopback"
action = "tcp.connect"
cidrs = ["127.0.0.1/32"]
decision = "allow"

[[rule]]
id = "bench-http"
action = "http.request"
decision = "allow"

# The load generators open thousands of connections a second and the idle
# scenario holds 10,000: far past the per-agent defaults (the fairness
# scenario measures those, on a daemon of its own).
[caps]
connections = 1000000
connections_per_second = 1000000
dns_queries_per_second = 1000000
"#;

pub struct Cordon {
    pub bin: PathBuf,
    pub state: PathBuf,
    pub guard: Guard,
}

/// How the daemon under test keeps its audit trail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// The default: a request is forwarded once its record is on disk.
    Strict,
    /// `[audit] durability = "batched"`: once the record is written to the
    /// log file (survives a daemon crash), on disk within 50 ms.
    Batched,
    /// Strict, with `[audit] outcomes = false`: no per-request `outcome`
    /// record, so its runs beside `Strict` price those records.
    StrictNoOutcomes,
}

impl Audit {
    /// The daemon's `[audit]` table.
    pub fn toml(self) -> &'static str {
        match self {
            Audit::Strict => "[audit]\ndurability = \"strict\"\n",
            Audit::Batched => "[audit]\ndurability = \"batched\"\n",
            Audit::StrictNoOutcomes => "[audit]\ndurability = \"strict\"\noutcomes = false\n",
        }
    }
}

impl Cordon {
    pub fn start(bin: &Path, dir: &Path, certs: &Certs, audit: Audit) -> anyhow::Result<Self> {
        let name = match audit {
            Audit::Strict => "cordon",
            Audit::Batched => "cordon-batched",
            Audit::StrictNoOutcomes => "cordon-no-outcomes",
        };
        Self::start_named(name, bin, dir, certs, audit)
    }

    /// A daemon whose state dir is `<dir>/<name>-state`: `--baseline-cordon`
    /// runs another build beside this one's under its own name. The policy
    /// file is shared (every daemon reads the same one).
    pub fn start_named(
        name: &str,
        bin: &Path,
        dir: &Path,
        certs: &Certs,
        audit: Audit,
    ) -> anyhow::Result<Self> {
        let policies = dir.join("cordon-policies");
        std::fs::create_dir_all(&policies)?;
        std::fs::write(policies.join("bench.toml"), POLICY)?;
        Self::start_with(name, bin, dir, certs, &policies, audit.toml())
    }

    /// A daemon with its own policies directory (policy files, and
    /// connectors under `connectors/`) and cordon.toml text: the JIT
    /// scenario's daemon, whose connector must not touch the others' traffic.
    pub fn start_with(
        name: &str,
        bin: &Path,
        dir: &Path,
        certs: &Certs,
        policies: &Path,
        toml: &str,
    ) -> anyhow::Result<Self> {
        let state = dir.join(format!("{name}-state"));
        std::fs::create_dir_all(&state)?;
        let config = state.join("cordon.toml");
        std::fs::write(&config, toml)?;
        // Strict modes: the daemon loads policy and config only when no one
        // but root can write them, whatever umask the bench runs under. The
        // directories stay searchable: root agents run as nobody and read
        // the CA bundle under the state dir.
        lock_down(policies)?;
        for (path, mode) in [(&state, 0o755), (&config, 0o644)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        // Nothing listens there: the bench uses no names Cordon resolves.
        let dns = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(state.join("daemon.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("daemon")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .arg("--policies")
            .arg(policies)
            .arg("--dns-upstream")
            .arg(&dns)
            .arg("--upstream-ca")
            .arg(&certs.upstream_ca)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let (cleanup_bin, cleanup_state) = (bin.to_path_buf(), state.clone());
        let guard = Guard::spawn("cordon daemon", &mut cmd)?.on_stop(move || {
            let _ = Command::new(&cleanup_bin)
                .arg("cleanup")
                .arg("--state-dir")
                .arg(&cleanup_state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        });
        let mut c = Self {
            bin: bin.to_path_buf(),
            state,
            guard,
        };
        c.wait_ready()?;
        Ok(c)
    }

    /// `cordon vault set NAME --kind KIND --from-file FILE`.
    pub fn vault_set(&self, name: &str, kind: &str, file: &Path) -> anyhow::Result<()> {
        let file = file.to_string_lossy();
        let out = self.cli(&["vault", "set", name, "--kind", kind, "--from-file", &file])?;
        if !out.status.success() {
            bail!(
                "cordon vault set {name} --kind {kind}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .cli(&["status"])
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                return Ok(());
            }
            if !self.guard.alive() {
                bail!("cordon daemon exited; log:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "cordon daemon not ready within 30 s; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.state.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The CA bundle agents must trust (Cordon's interception CA).
    pub fn agent_ca(&self) -> PathBuf {
        self.state.join("run/agent-ca-bundle.pem")
    }

    /// A client subcommand against this daemon.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.bin)
            .args(args)
            .arg("--state-dir")
            .arg(&self.state)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running cordon {}", args.join(" ")))
    }

    /// `cordon run --agent AGENT ... -- PROGRAM`: the program runs inside a
    /// fresh agent cgroup (as root: the load generator needs no user).
    pub fn run_as(&self, agent: &str, program: &Path) -> Command {
        self.run_with(agent, &["--allow-root"], program)
    }

    /// `cordon run --agent AGENT --user USER ... -- PROGRAM`: the program
    /// runs contained, as USER, in the caller's working directory.
    pub fn run_user(&self, agent: &str, user: &str, program: &Path) -> Command {
        self.run_with(agent, &["--user", user], program)
    }

    fn run_with(&self, agent: &str, flags: &[&str], program: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg("--agent")
            .arg(agent)
            .arg("--state-dir")
            .arg(&self.state)
            .args(flags)
            .arg("--")
            .arg(program);
        cmd
    }
}

/// Directories 0755, files 0644, all the way down.
fn lock_down(dir: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.is_dir() {
            lock_down(&path)?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}
