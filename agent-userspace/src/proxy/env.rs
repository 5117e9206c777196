//! What the proxy needs from the rest of Cordon, as narrow interfaces. The
//! daemon implements them and hands the proxy a `ProxyEnv` when it starts
//! it; the proxy never reaches into the daemon.
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use cordon_audit::AuditLog;
use cordon_tls::{CertAuthority, UpstreamTls};
use cordon_vault::Vault;

use super::{enrich::EnrichCache, live::Connections, upstream::Pools};
use crate::{
    bpf::maps::FlowOrigin,
    cgroup::AgentPath,
    config::ForeignCredentials,
    request::{Decider, Snapshots, caps::Admission, probes::Probes},
};

/// Who a redirected flow belongs to.
pub trait Flows: Send + Sync {
    /// The kernel's record of a redirected flow, by the client's address.
    /// Taken once: a second call for the same flow finds nothing.
    fn origin(&self, peer: &SocketAddr) -> Option<FlowOrigin>;
    /// The agent instance a cgroup belongs to.
    fn agent(&self, cgroup_id: u64) -> Option<AgentPath>;
    /// The name the agent resolved, through Cordon, to `ip`.
    fn resolved(&self, agent: &AgentPath, ip: IpAddr) -> Option<String>;
}

/// Settings the proxy reads.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub proxy_port: u16,
    pub dns_port: u16,
    /// The web console's port, when it runs: one of Cordon's own listeners.
    pub console_port: Option<u16>,
    pub foreign_credentials: ForeignCredentials,
}

pub struct ProxyEnv {
    pub flows: Arc<dyn Flows>,
    pub snapshots: Arc<dyn Snapshots>,
    pub decider: Arc<dyn Decider>,
    /// The per-agent caps: connections, their rate, request bytes.
    pub admission: Arc<dyn Admission>,
    /// Connections reset before their first byte, coalesced per burst.
    pub probes: Arc<dyn Probes>,
    pub audit: AuditLog,
    pub vault: Arc<Vault>,
    /// Just-in-time credentials: minted tokens, AWS sessions, placeholders.
    pub jit: Arc<cordon_jit::JitCredentials>,
    pub ca: CertAuthority,
    pub upstream_tls: Arc<UpstreamTls>,
    pub pools: Arc<Pools>,
    pub conns: Arc<Connections>,
    pub enrich_cache: EnrichCache,
    pub settings: Settings,
}

pub type Env = Arc<ProxyEnv>;

/// The key minted credentials are cached and revoked under: the agent's
/// chain and its instance. The proxy mints under it, the daemon revokes.
pub fn instance_of(path: &AgentPath) -> cordon_jit::InstanceId {
    cordon_jit::InstanceId::new(&path.chain_display(), path.instance())
}
