//! One ready test world for end-to-end tests of the real daemon: a namespace with plain HTTP
//! (port 80), HTTPS (443, [`DEFAULT_TLS_NAMES`]) and git (HTTPS on the second addresses)
//! upstreams, a test DNS upstream that resolves every default name there, a test CA the daemon
//! trusts for upstream TLS, and a daemon running a given policy.
//!
//! DNS: `github.com` and `git.test` resolve to the git server (`v4_at(1)`, `v6_at(1)`); every
//! other default name to the primary addresses (`v4()`, `v6()`) where `http` and `https` listen.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::daemon::{Daemon, DaemonOpts, PolicyDir};
use crate::dns::TestDns;
use crate::error::{Error, Result};
use crate::git_http::GitServer;
use crate::http::{HttpServer, HttpsServer};
use crate::netns::NetNs;
use crate::process::run_with_timeout;
use crate::tls::{DEFAULT_TLS_NAMES, TestCa};
use crate::trail::{Trail, read_trail};

/// Names served by the git server rather than the HTTPS server.
pub const GIT_NAMES: &[&str] = &["github.com", "git.test"];
/// File name the world's policy is written to.
pub const POLICY_FILE: &str = "e2e.toml";
/// Default bound for one agent run.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The interpreter agents use: the system one, which `nobody` can execute.
pub const PYTHON: &str = "/usr/bin/python3";

/// `allowed.test` may be resolved and fetched over plain HTTP; nothing else
/// is allowed.
pub const ALLOWED_TEST_ONLY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-allowed"
action = "dns.query"
hosts = ["allowed.test"]
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "no_proxy",
    "NO_PROXY",
];

#[derive(Debug)]
pub struct World {
    pub ns: NetNs,
    pub dns: TestDns,
    pub ca: TestCa,
    pub http: HttpServer,
    pub https: HttpsServer,
    pub git: GitServer,
    pub policies: PolicyDir,
    pub daemon: Daemon,
    /// Holds the `--config` file of [`World::start_configured`].
    _config: Option<tempfile::TempDir>,
}

impl World {
    /// A world whose daemon trusts the test CA for upstream TLS.
    pub fn start(policy: &str) -> Result<Self> {
        Self::build(policy, true, None)
    }

    /// [`World::start`] with `config` as the daemon's `cordon.toml`.
    pub fn start_configured(policy: &str, config: &str) -> Result<Self> {
        Self::build(policy, true, Some(config))
    }

    /// A world whose daemon is started without `--upstream-ca`: upstream TLS cannot verify.
    pub fn start_untrusted_upstream(policy: &str) -> Result<Self> {
        Self::build(policy, false, None)
    }

    fn build(policy: &str, trust_upstream: bool, config: Option<&str>) -> Result<Self> {
        let ns = NetNs::new()?;
        let ca = TestCa::new()?;
        let http = HttpServer::start(&ns)?;
        let https = HttpsServer::start(&ns, &ca, DEFAULT_TLS_NAMES)?;
        let git = GitServer::start(&ns, &ca, GIT_NAMES)?;
        let dns = TestDns::start()?;
        for name in DEFAULT_TLS_NAMES {
            let (v4, v6) = if GIT_NAMES.contains(name) {
                (ns.v4_at(1), ns.v6_at(1))
            } else {
                (ns.v4(), ns.v6())
            };
            dns.set(name, &[IpAddr::V4(v4), IpAddr::V6(v6)]);
        }
        let conf_dir = config
            .map(|text| -> Result<tempfile::TempDir> {
                let io = |what: &str, source| Error::Io {
                    what: what.into(),
                    source,
                };
                let dir = tempfile::tempdir().map_err(|e| io("config tempdir", e))?;
                std::fs::write(dir.path().join("cordon.toml"), text)
                    .map_err(|e| io("write cordon.toml", e))?;
                Ok(dir)
            })
            .transpose()?;
        let conf = conf_dir.as_ref().map(|d| d.path().join("cordon.toml"));
        let (policies, daemon) =
            start_daemon_with(&dns, trust_upstream.then_some(&ca), policy, conf.as_deref())?;
        Ok(Self {
            ns,
            dns,
            ca,
            http,
            https,
            git,
            policies,
            daemon,
            _config: conf_dir,
        })
    }

    /// The daemon's audit trail so far.
    /// Binds each connector in `bindings` to a vault entry (`<connector>-key`) holding the
    /// value given for it: the entries are stored, `rules` rewritten with a `[credentials]`
    /// table, and reloaded.
    pub fn bind_credentials(&self, rules: &str, bindings: &[(&str, &str)]) -> Result<()> {
        let mut policy = format!("{rules}\n[credentials]\n");
        for (connector, value) in bindings {
            let entry = format!("{connector}-key");
            crate::secrets::store(&self.daemon, &entry, value)?;
            policy.push_str(&format!("{connector} = \"{entry}\"\n"));
        }
        self.policies.write(POLICY_FILE, &policy)?;
        let reload = self.daemon.cordon(&["policy", "reload"])?;
        if reload.status.success() {
            return Ok(());
        }
        Err(crate::Error::Command {
            command: "cordon policy reload".into(),
            status: reload.status.to_string(),
            stderr: String::from_utf8_lossy(&reload.stderr).into_owned(),
        })
    }

    pub fn trail(&self) -> Result<Trail> {
        read_trail(self.daemon.state_dir())
    }

    /// `cordon status` as JSON (has `proxy_port`, `dns_port`, `pid`, ...).
    pub fn status(&self) -> Result<serde_json::Value> {
        status_json(&self.daemon)
    }

    /// `cordon run --agent NAME ... -- CMD` with no proxy variables from the test's environment.
    pub fn agent(&self, name: &str, cmd: &[&str]) -> Command {
        agent_command(&self.daemon, name, cmd)
    }

    /// Run an agent to completion within [`AGENT_TIMEOUT`].
    pub fn run(&self, name: &str, cmd: &[&str]) -> Result<Output> {
        run_with_timeout(&mut self.agent(name, cmd), AGENT_TIMEOUT)
    }

    /// Run `script` with the system python inside agent `name`; `args` become `sys.argv[1:]`.
    pub fn python(&self, name: &str, script: &str, args: &[&str]) -> Result<Output> {
        let mut cmd = vec![PYTHON, "-c", script];
        cmd.extend_from_slice(args);
        self.run(name, &cmd)
    }
}

/// Start a daemon on `policy` (written to a fresh policy dir with the shipped connectors),
/// resolving through `dns`, trusting `ca` for upstream TLS when given.
pub fn start_daemon(
    dns: &TestDns,
    ca: Option<&TestCa>,
    policy: &str,
) -> Result<(PolicyDir, Daemon)> {
    start_daemon_with(dns, ca, policy, None)
}

/// [`start_daemon`] reading `config` as its `cordon.toml` when given.
fn start_daemon_with(
    dns: &TestDns,
    ca: Option<&TestCa>,
    policy: &str,
    config: Option<&std::path::Path>,
) -> Result<(PolicyDir, Daemon)> {
    let policies = PolicyDir::new()?;
    policies.write(POLICY_FILE, policy)?;
    let mut opts = DaemonOpts::new(&policies.path(), dns.addr());
    if let Some(config) = config {
        opts = opts.arg("--config").arg(&config.to_string_lossy());
    }
    if let Some(ca) = ca {
        opts = opts.upstream_ca(&ca.pem_path());
    }
    let daemon = Daemon::start(opts)?;
    Ok((policies, daemon))
}

/// An agent command for `daemon`, proxy variables removed so clients dial directly.
pub fn agent_command(daemon: &Daemon, name: &str, cmd: &[&str]) -> Command {
    let mut c = daemon.agent(name, cmd);
    for var in PROXY_VARS {
        c.env_remove(var);
    }
    c
}

/// `cordon status` of `daemon`, parsed.
pub fn status_json(daemon: &Daemon) -> Result<serde_json::Value> {
    let out = daemon.cordon(&["status"])?;
    if !out.status.success() {
        return Err(Error::Command {
            command: "cordon status".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Setup(format!("`cordon status` printed bad JSON: {e}")))
}

/// Exit status, stdout and stderr of `out`, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout of `out` as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything a process printed, stdout then stderr: where a leaked secret is looked for.
pub fn all_output(out: &Output) -> Vec<u8> {
    [&out.stdout[..], &out.stderr].concat()
}

/// A directory every user may write, for agents running as `nobody` (e.g. a git clone).
pub fn world_writable_dir() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("cordon-e2e-agent-")
        .tempdir()
        .map_err(|e| Error::Setup(format!("create agent dir: {e}")))?;
    set_mode(dir.path(), 0o777)?;
    fn set_mode(p: &Path, mode: u32) -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::Setup(format!("chmod {}: {e}", p.display())))
    }
    Ok(dir)
}
