//! clap definitions. Every client command takes `--state-dir` (or
//! CORDON_STATE_DIR) to find the daemon it talks to; without either the
//! host-wide paths apply.
use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::DaemonFlags;

#[derive(Parser, Debug)]
#[command(
    name = "cordon",
    version,
    about = "Host enforcement for autonomous AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon in the foreground.
    Daemon(DaemonArgs),
    /// Launch a command as an agent, confined to a Cordon cgroup.
    Run(RunArgs),
    /// Ask the daemon whether it is up.
    Status(Client),
    /// Have the running daemon replace itself with the installed binary,
    /// keeping its sockets and pinned programs (the package runs this).
    Upgrade(super::upgrade::UpgradeArgs),
    /// List agent instances.
    Ps(Client),
    /// Remove pinned programs, maps and the cgroup tree (daemon stopped).
    Cleanup(Client),
    /// Policy operations.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Stop an agent now: kernel mark, freeze, cut connections and approvals.
    Kill(KillArgs),
    /// Undo a kill.
    Resume(KillArgs),
    /// Kill every process of an agent (they are gone, not frozen).
    Terminate(KillArgs),
    /// List requests waiting for a human, with what is needed to decide.
    Approvals(super::grants::ApprovalsArgs),
    /// Let a pending request through: once, N uses, for a while, or always.
    Approve(super::grants::ApproveArgs),
    /// Standing grants from approvals; `cordon grants revoke ID`.
    Grants(super::grants::GrantsArgs),
    /// Refuse a pending request.
    Deny(DenyArgs),
    /// Connector definitions (how requests become actions).
    #[command(subcommand)]
    Connectors(ConnectorsCmd),
    /// Credentials Cordon injects for agents.
    #[command(subcommand)]
    Vault(VaultCmd),
    /// The tamper-evident audit trail: tail, export, verify.
    #[command(subcommand)]
    Audit(super::audit::AuditCmd),
    /// Install the daemon as a hardened systemd service (or into --prefix).
    Install(super::install::InstallArgs),
    /// Stop and remove the installed service; --purge also removes config and state.
    Uninstall(super::install::UninstallArgs),
    /// The web console.
    #[command(subcommand)]
    Console(ConsoleCmd),
    /// Check that this host, the daemon and the config can enforce; --attack proves it.
    Doctor(crate::doctor::DoctorArgs),
    /// The in-agent side of `doctor --attack` (not for direct use).
    #[command(hide = true, name = "doctor-probe")]
    DoctorProbe {
        /// The battery's configuration, as JSON.
        config: String,
    },
    /// Man pages, completions and packaged files (`cargo xtask package`).
    #[command(hide = true, name = "generate-assets")]
    GenerateAssets(super::assets::AssetsArgs),
}

#[derive(Subcommand, Debug)]
pub enum ConsoleCmd {
    /// Make a new login token for the web console and print it (only its
    /// hash is kept; the previous token and its sessions stop working).
    Token(Client),
}

#[derive(Args, Debug, Clone)]
pub struct Client {
    /// State directory of the daemon to talk to.
    #[arg(long, env = "CORDON_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Host-wide configuration file (default /etc/cordon/cordon.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Put every path (socket, database, CA, pins, cgroup parent) in one namespace.
    #[arg(long, env = "CORDON_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Policy directory (default /etc/cordon/policies).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Upstream DNS resolver (repeatable); default: /etc/resolv.conf.
    #[arg(long = "dns-upstream")]
    pub dns_upstream: Vec<SocketAddr>,
    /// Extra CA trusted for upstream TLS (repeatable).
    #[arg(long = "upstream-ca")]
    pub upstream_ca: Vec<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// POST each pending approval (JSON, Slack-compatible `text`) to this URL.
    #[arg(long)]
    pub approval_webhook: Option<String>,
    /// Serve the web console on this loopback address (e.g. 127.0.0.1:7443).
    #[arg(long, value_name = "ADDR", conflicts_with = "console_socket")]
    pub console: Option<SocketAddr>,
    /// Serve the web console on this unix socket instead, behind your own
    /// reverse proxy (which authenticates operators).
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// With --console-socket: the URL operators open through the proxy
    /// (e.g. https://cordon.example.com); Host and Origin are checked against it.
    #[arg(long, value_name = "URL")]
    pub console_origin: Option<String>,
}

impl DaemonArgs {
    pub fn into_flags(self) -> DaemonFlags {
        DaemonFlags {
            config: self.config,
            state_dir: self.state_dir,
            policies: self.policies,
            dns_upstream: self.dns_upstream,
            upstream_ca: self.upstream_ca,
            json_logs: self.log_json,
            metrics_addr: self.metrics_addr,
            approval_webhook: self.approval_webhook,
            console: crate::console::config::ConsoleFlags {
                listen: self.console,
                socket: self.console_socket,
                public_origin: self.console_origin,
            },
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Agent name: the identity policies and audit records use.
    #[arg(long)]
    pub agent: String,
    #[command(flatten)]
    pub client: Client,
    /// User to run the agent as (default: the user who invoked sudo).
    #[arg(long)]
    pub user: Option<String>,
    /// Allow running the agent as root.
    #[arg(long)]
    pub allow_root: bool,
    /// Keep N descriptors from 3 up open in the agent (as systemd-run);
    /// every other inherited descriptor above stdio is closed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run even if stdin, stdout or stderr is a network socket.
    #[arg(long)]
    pub allow_socket_stdio: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ConnectorsCmd {
    /// The connectors installed.
    List(PolicyDirArg),
    /// Which action(s) and params a request would become.
    Match(MatchArgs),
}

/// The policy directory of an offline command, as an argument or as `--policies` (every
/// offline command takes both forms; default /etc/cordon/policies).
#[derive(Args, Debug, Clone)]
pub struct PolicyDirArg {
    /// Policy directory (the same as --policies).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Policy directory.
    #[arg(long = "policies", value_name = "DIR", conflicts_with = "dir")]
    pub policies: Option<PathBuf>,
}

impl PolicyDirArg {
    pub fn path(&self) -> PathBuf {
        self.dir
            .clone()
            .or_else(|| self.policies.clone())
            .unwrap_or_else(|| PathBuf::from(crate::paths::HOST_POLICIES))
    }
}

/// A request described on the command line, read the way the proxy reads it.
#[derive(Args, Debug, Clone)]
pub struct RequestArgs {
    pub method: String,
    pub url: String,
    /// Request body. Its type comes from a `content-type` header if given, else it is sniffed
    /// as the proxy does (`{` or `[` first: JSON, otherwise a form).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from a file (binary bodies such as a git push).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// A request header, `'name: value'`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct MatchArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub policies: PolicyDirArg,
}

#[derive(Args, Debug, Clone)]
pub struct PolicyTestArgs {
    #[arg(long)]
    pub agent: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Show every rule considered.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub policies: PolicyDirArg,
}

#[derive(Subcommand, Debug)]
pub enum VaultCmd {
    /// Store a secret (new version if it exists).
    Set {
        name: String,
        /// Read the value from standard input.
        #[arg(long)]
        from_stdin: bool,
        /// Read the value from a file.
        #[arg(long)]
        from_file: Option<PathBuf>,
        #[arg(long, default_value = "token")]
        kind: String,
        #[command(flatten)]
        client: Client,
    },
    /// Names, kinds, dates and users; never values.
    List {
        #[command(flatten)]
        client: Client,
    },
    /// Delete a secret.
    Rm {
        name: String,
        #[command(flatten)]
        client: Client,
    },
    /// Re-seal every secret under a new master key, atomically.
    RotateKey {
        #[command(flatten)]
        client: Client,
    },
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// AGENT or AGENT/ID.
    pub target: Option<String>,
    /// Every agent.
    #[arg(long, conflicts_with = "target")]
    pub all: bool,
    /// Why (recorded in the audit trail).
    #[arg(long, default_value = "operator kill switch")]
    pub reason: String,
    /// Only cut this connector's actions for the agent, without freezing.
    #[arg(long)]
    pub connector: Option<String>,
    #[command(flatten)]
    pub client: Client,
}

#[derive(Args, Debug)]
pub struct DenyArgs {
    pub id: String,
    #[arg(long, default_value = "denied by an operator")]
    pub reason: String,
    #[command(flatten)]
    pub client: Client,
}

/// `90s`, `10m`, `2h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: use e.g. 90s, 10m, 2h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("bad duration unit in {s:?}: use s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Reload the policy directory in the running daemon.
    Reload(Client),
    /// Validate a policy directory offline.
    Check(PolicyDirArg),
    /// Show the action(s), params and decision for a request, offline.
    Test(PolicyTestArgs),
    /// Propose a least-privilege policy for an agent from its audit trail.
    Suggest(super::suggest::SuggestArgs),
}
