//! The daemon as the proxy sees it: the narrow interfaces of
//! `proxy::env`, implemented over the daemon's state. This is the only
//! place the two meet; the proxy never names the daemon.
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use super::{Shared, caps::admit::DaemonAdmission, enforce::DaemonDecider};
use crate::{
    bpf::maps::FlowOrigin,
    cgroup::AgentPath,
    dns,
    proxy::{
        self,
        env::{Flows, Settings},
    },
    request::{Pinned, Snapshots},
};

struct DaemonFlows(Shared);

impl Flows for DaemonFlows {
    fn origin(&self, peer: &SocketAddr) -> Option<FlowOrigin> {
        self.0.maps.take_tcp_origin(peer)
    }

    fn agent(&self, cgroup_id: u64) -> Option<AgentPath> {
        self.0.registry.lookup(cgroup_id)
    }

    fn resolved(&self, agent: &AgentPath, ip: IpAddr) -> Option<String> {
        self.0.names.lookup(&agent.chain_display(), ip)
    }
}

struct DaemonProbes(Shared);

impl crate::request::probes::Probes for DaemonProbes {
    fn reset_probe(
        &self,
        agent: &AgentPath,
        dst: std::net::SocketAddr,
        answer: crate::request::probes::ProbeAnswer,
    ) -> crate::request::probes::ProbeHit {
        self.0
            .probes
            .hit(agent, dst, answer, std::time::Instant::now())
    }
}

struct DaemonSnapshots(Shared);

impl Snapshots for DaemonSnapshots {
    fn pin(&self) -> Pinned {
        self.0.policy.pin(&self.0.connectors)
    }

    fn add_cost(&self, run: &str, usd: f64) {
        self.0.policy.engine().add_cost(run, usd);
    }
}

/// What one proxy core owns: its upstream pools and its leaf-cache shard.
/// The enrichment cache is shared (`enrich`), like everything else.
pub struct CoreParts {
    pub pools: Arc<proxy::upstream::Pools>,
    pub ca: cordon_tls::CertAuthority,
    pub enrich_cache: proxy::enrich::EnrichCache,
}

pub fn proxy_env(d: &Shared, core: CoreParts) -> proxy::Env {
    Arc::new(proxy::ProxyEnv {
        flows: Arc::new(DaemonFlows(d.clone())),
        snapshots: Arc::new(DaemonSnapshots(d.clone())),
        decider: Arc::new(DaemonDecider(d.clone())),
        admission: Arc::new(DaemonAdmission(d.clone())),
        probes: Arc::new(DaemonProbes(d.clone())),
        audit: d.audit.clone(),
        vault: d.vault.clone(),
        jit: d.jit.clone(),
        ca: core.ca,
        upstream_tls: d.upstream_tls.clone(),
        pools: core.pools,
        conns: d.conns.clone(),
        enrich_cache: core.enrich_cache,
        settings: Settings {
            proxy_port: d.proxy_port,
            dns_port: d.dns_port,
            console_port: d.console_addr.get().map(|a| a.port()),
            foreign_credentials: d.cfg.foreign_credentials,
        },
    })
}

struct DaemonDnsClients(Shared);

impl dns::Clients for DaemonDnsClients {
    fn origin(&self, peer: &SocketAddr) -> Option<FlowOrigin> {
        self.0.maps.dns_client(peer)
    }

    fn agent(&self, cgroup_id: u64) -> Option<AgentPath> {
        self.0.registry.lookup(cgroup_id)
    }

    fn remember(&self, agent: &AgentPath, name: &str, ip: IpAddr, ttl: Duration) {
        self.0.names.remember(&agent.chain_display(), name, ip, ttl);
    }
}

pub fn dns_env(d: &Shared) -> dns::Env {
    Arc::new(dns::DnsEnv {
        clients: Arc::new(DaemonDnsClients(d.clone())),
        snapshots: Arc::new(DaemonSnapshots(d.clone())),
        decider: Arc::new(DaemonDecider(d.clone())),
        admission: Arc::new(DaemonAdmission(d.clone())),
        audit: d.audit.clone(),
        upstreams: d.cfg.dns_upstream.clone(),
    })
}
