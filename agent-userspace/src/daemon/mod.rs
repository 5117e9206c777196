//! The long-running daemon: attaches enforcement, then serves the proxy,
//! the resolver and the control socket until told to stop.
pub mod agent_env;
pub mod agents;
pub mod approvals;
pub mod audit_netlink;
pub mod audit_status;
pub mod caps;
pub mod contain_watch;
pub mod contained;
pub mod contained_store;
pub mod cores;
pub mod decide;
pub mod drain;
pub mod enforce;
pub mod env;
pub mod grants;
pub mod handover;
pub mod jit;
pub mod kill;
pub mod kill_marks;
pub mod landlock_audit;
pub mod landlock_lost;
pub mod landlock_pairing;
pub mod launch;
pub mod launch_env;
pub mod launch_fs;
pub mod listeners;
pub mod memory;
pub mod probes;
pub mod reload;
pub mod repeats;
pub mod sched;
pub mod start;
pub mod stats;
pub mod store;
pub mod strict_modes;
pub mod webhook;

use std::sync::Arc;

use arc_swap::ArcSwap;
use cordon_connectors::ConnectorSet;
use cordon_tls::{CertAuthority, UpstreamTls};

use crate::{bpf::EnforcementMaps, config::DaemonConfig, dns::NameCache, proxy::upstream::PoolSet};

pub use start::run;

/// When this process image began serving agents (`cordon status`): an
/// upgrade in place keeps the pid and starts a new image, so `cordon
/// upgrade` waits for this to change.
static SERVING_SINCE_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

pub fn serving_since_ms() -> Option<u64> {
    SERVING_SINCE_MS.get().copied()
}

/// Marks this image as serving; called once the proxy and resolver serve.
fn mark_serving() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if SERVING_SINCE_MS.set(now).is_err() {
        tracing::warn!("the daemon was marked as serving twice");
    }
}

/// State shared by every task of the daemon.
pub struct Daemon {
    pub cfg: DaemonConfig,
    pub registry: agents::Registry,
    pub maps: EnforcementMaps,
    pub policy: decide::PolicyHandle,
    pub connectors: ArcSwap<ConnectorSet>,
    pub names: NameCache,
    pub ca: CertAuthority,
    pub upstream_tls: Arc<UpstreamTls>,
    /// Upstream pools: one per proxy core, one for the daemon's own calls.
    pub pools: PoolSet,
    pub audit: cordon_audit::AuditLog,
    pub kills: kill_marks::KillMarks,
    pub approvals: approvals::Approvals,
    pub grants: grants::Grants,
    pub conns: Arc<crate::proxy::live::Connections>,
    /// Per-agent caps and the daemon's descriptor budget.
    pub caps: Arc<caps::Caps>,
    /// Bursts of connections agents reset before their first byte.
    pub probes: probes::ProbeBursts,
    pub stats: stats::Stats,
    pub vault: Arc<cordon_vault::Vault>,
    /// Just-in-time credentials: AWS placeholders issued at `cordon run`,
    /// minted tokens and sessions, revoked when the instance ends.
    pub jit: Arc<cordon_jit::JitCredentials>,
    pub proxy_port: u16,
    pub dns_port: u16,
    /// The kernel half of host containment, or why it is unavailable
    /// (then contained agents are refused, never started uncontained).
    pub contain_kernel: Result<Box<dyn contained::KernelLayer>, String>,
    /// Whether the optional BPF LSM layer attached, or why not.
    pub contain_lsm: Result<(), String>,
    /// Whether Landlock's refusals reach the trail (the kernel audit
    /// stream is read), or why not; set once the reader has started.
    pub landlock_records: std::sync::OnceLock<Result<(), String>>,
    pub contained: contained::Contained,
    /// Where the web console listens, once it does (`[console]`).
    pub console_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

pub type Shared = Arc<Daemon>;
