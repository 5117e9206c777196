//! One redirected connection: where it enters, where it is decided, where
//! it leaves.
use std::{net::SocketAddr, time::Duration};

use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

use crate::{bpf::maps::FlowOrigin, cgroup::AgentPath, daemon::Shared};

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(d: Shared, client: TcpStream, peer: SocketAddr) {
    // Enters: the kernel's record of the flow, taken by the client's port.
    let Some(origin) = d.maps.take_tcp_origin(&peer) else {
        tracing::warn!(%peer, "connection without a redirect record (not from an agent): refused");
        return reset(client);
    };
    let Some(agent) = d.registry.lookup(origin.cgroup_id) else {
        tracing::warn!(cgroup_id = origin.cgroup_id, "connection from an unknown cgroup: refused");
        return reset(client);
    };
    if is_cordon_itself(&d, &origin) {
        tracing::warn!(agent = %agent.chain_display(), dst = %origin.dst, "agent connected to Cordon's own listener: refused");
        return reset(client);
    }

    // Decided: tcp.connect {ip, port, host}.
    let host = d
        .names
        .lookup(&agent.chain_display(), origin.dst.ip())
        .unwrap_or_default();
    let params = tcp_params(&origin, &host);
    let decision = d.policy.decide(&agent, "tcp.connect", &params, None);
    log_decision(&agent, &origin, &params, &decision);
    if decision.verdict != cordon_policy::Verdict::Allow {
        return reset(client);
    }

    // Leaves: to the original destination, bytes both ways.
    let upstream = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(origin.dst)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(agent = %agent.chain_display(), dst = %origin.dst, "upstream connect failed: {e}");
            return reset(client);
        }
        Err(_) => {
            tracing::info!(agent = %agent.chain_display(), dst = %origin.dst, "upstream connect timed out");
            return reset(client);
        }
    };
    let _ = upstream.set_nodelay(true);
    super::splice::splice(client, upstream).await;
}

fn tcp_params(origin: &FlowOrigin, host: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ip".into(), json!(origin.dst.ip().to_string()));
    m.insert("port".into(), json!(origin.dst.port()));
    m.insert("host".into(), json!(host));
    m
}

fn is_cordon_itself(d: &Shared, origin: &FlowOrigin) -> bool {
    origin.dst.ip().is_loopback() && (origin.dst.port() == d.proxy_port || origin.dst.port() == d.dns_port)
}

fn log_decision(agent: &AgentPath, origin: &FlowOrigin, params: &Map<String, Value>, decision: &cordon_policy::Decision) {
    let shown = Value::Object(params.clone());
    tracing::info!(
        agent = %agent.chain_display(),
        instance = agent.instance(),
        cgroup_id = origin.cgroup_id,
        pid = origin.pid,
        uid = origin.uid,
        action = "tcp.connect",
        params = %shown,
        decision = decision.verdict.name(),
        rule = %decision.rule_id,
        reason = %decision.reason,
        policy_version = %decision.policy_version,
        "decision"
    );
}

/// Refuse with a RST so the client fails at once instead of waiting.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}
