//! Cordon's resolver. Agents' DNS datagrams arrive here (sendmsg/connect
//! hooks); each query is a `dns.query {name, type}` action. Allowed queries
//! are forwarded to the configured upstreams, and every address an answer
//! carries is remembered per agent so `tcp.connect` rules can match on the
//! name the agent resolved rather than on bare IPs.
//!
//! The resolver sees the rest of Cordon only through `DnsEnv`.
mod names;
pub mod names_file;
mod server;
mod upstream;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

pub use names::NameCache;
pub use server::serve;

use crate::{
    bpf::maps::FlowOrigin,
    cgroup::AgentPath,
    request::{Decider, Snapshots, caps::Admission},
};

/// Who sent a query, and where answered names are remembered.
pub trait Clients: Send + Sync {
    /// The kernel's record of the agent socket that sent from `peer`.
    fn origin(&self, peer: &SocketAddr) -> Option<FlowOrigin>;
    fn agent(&self, cgroup_id: u64) -> Option<AgentPath>;
    /// Remembers that `name` answered `ip` for this agent.
    fn remember(&self, agent: &AgentPath, name: &str, ip: IpAddr, ttl: Duration);
}

pub struct DnsEnv {
    pub clients: Arc<dyn Clients>,
    pub snapshots: Arc<dyn Snapshots>,
    pub decider: Arc<dyn Decider>,
    /// The per-agent caps: DNS queries per second.
    pub admission: Arc<dyn Admission>,
    pub audit: cordon_audit::AuditLog,
    pub upstreams: Vec<SocketAddr>,
}

pub type Env = Arc<DnsEnv>;
