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
    /// List agent instances.
    Ps(Client),
    /// Remove pinned programs, maps and the cgroup tree (daemon stopped).
    Cleanup(Client),
    /// Policy operations.
    #[command(subcommand)]
    Policy(PolicyCmd),
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
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Reload the policy directory in the running daemon.
    Reload(Client),
    /// Validate a policy directory offline.
    Check { dir: PathBuf },
}
