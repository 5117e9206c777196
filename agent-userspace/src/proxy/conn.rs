//! One redirected connection: where it enters, where it is decided, where
//! it leaves. The kernel's record says who connected and where to; the
//! first bytes say whether Cordon can see actions (TLS or HTTP) or only a
//! `tcp.connect`.
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use cordon_audit::EventKind;
use cordon_policy::Verdict;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

use super::{
    detect::{Detected, detect},
    http::{HttpCtx, serve},
};
use crate::daemon::{
    Shared,
    audit::{Actor, DecisionRecord, append},
};

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(d: Shared, client: TcpStream, peer: SocketAddr) {
    // Enters: the kernel's record of the flow, taken by the client's port.
    let Some(origin) = d.maps.take_tcp_origin(&peer) else {
        tracing::warn!(%peer, "connection without a redirect record (not from an agent): refused");
        return reset(client);
    };
    let Some(agent) = d.registry.lookup(origin.cgroup_id) else {
        tracing::warn!(
            cgroup_id = origin.cgroup_id,
            "connection from an unknown cgroup: refused"
        );
        return reset(client);
    };
    let actor = Actor { agent, origin };
    let started = Instant::now();
    let host = d
        .names
        .lookup(&actor.agent.chain_display(), origin.dst.ip())
        .unwrap_or_default();
    let params = tcp_params(&actor, &host);

    if is_cordon_itself(&d, &actor) {
        let decision = own_listener_decision(&d);
        let _ = audit_connect(&d, &actor, &params, &decision, &host, started).await;
        return reset(client);
    }

    // Decided, first at the network layer. For connections Cordon can read
    // (TLS, HTTP) only the address guard applies here and each request is
    // then decided as an action; others are decided as tcp.connect alone.
    let net = d.policy.decide(&actor.agent, "tcp.connect", &params, None);
    let detected = if net.verdict == Verdict::Deny && &*net.rule_id == "ssrf-guard" {
        Detected::Other
    } else {
        detect(&client).await
    };
    match detected {
        Detected::Tls { sni } if net.rule_id.as_ref() != "ssrf-guard" => {
            intercept_tls(d, actor, client, sni, host).await;
        }
        Detected::Http if net.rule_id.as_ref() != "ssrf-guard" => {
            let ctx = HttpCtx {
                d,
                actor,
                sni: None,
                tls: false,
                resolved: (!host.is_empty()).then_some(host),
                h2: false,
            };
            serve(Arc::new(ctx), client).await;
        }
        Detected::Stalled => {
            let decision = refusal(
                &d,
                "tls-handshake",
                "the client never finished its TLS ClientHello",
            );
            let _ = audit_connect(&d, &actor, &params, &decision, &host, started).await;
            reset(client);
        }
        _ => {
            let audited = audit_connect(&d, &actor, &params, &net, &host, started).await;
            if net.verdict != Verdict::Allow || audited.is_err() {
                return reset(client);
            }
            connect_and_splice(&actor, client).await;
        }
    }
}

async fn intercept_tls(
    d: Shared,
    actor: Actor,
    client: TcpStream,
    sni: Option<String>,
    host: String,
) {
    let fallback = if host.is_empty() {
        actor.origin.dst.ip().to_string()
    } else {
        host.clone()
    };
    let accepted =
        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, d.ca.accept(client, &fallback)).await;
    let intercepted = match accepted {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            tracing::info!(agent = %actor.agent.chain_display(), "TLS handshake with the agent failed: {e}");
            let decision = refusal(&d, "tls-handshake", &format!("TLS handshake failed: {e}"));
            let _ = audit_connect(
                &d,
                &actor,
                &tcp_params(&actor, &host),
                &decision,
                &host,
                Instant::now(),
            )
            .await;
            return;
        }
        Err(_) => {
            let decision = refusal(
                &d,
                "tls-handshake",
                "the client never finished its TLS handshake",
            );
            let _ = audit_connect(
                &d,
                &actor,
                &tcp_params(&actor, &host),
                &decision,
                &host,
                Instant::now(),
            )
            .await;
            return;
        }
    };
    let h2 = intercepted.alpn() == cordon_tls::Alpn::H2;
    let ctx = HttpCtx {
        d,
        actor,
        sni: sni.or(intercepted.from_sni.then(|| intercepted.name.clone())),
        tls: true,
        resolved: (!host.is_empty()).then_some(host),
        h2,
    };
    serve(Arc::new(ctx), intercepted.stream).await;
}

/// Leaves: to the original destination, bytes both ways.
async fn connect_and_splice(actor: &Actor, client: TcpStream) {
    let dst = actor.origin.dst;
    match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(upstream)) => {
            let _ = upstream.set_nodelay(true);
            super::splice::splice(client, upstream).await;
        }
        Ok(Err(e)) => {
            tracing::info!(agent = %actor.agent.chain_display(), %dst, "upstream connect failed: {e}");
            reset(client);
        }
        Err(_) => {
            tracing::info!(agent = %actor.agent.chain_display(), %dst, "upstream connect timed out");
            reset(client);
        }
    }
}

async fn audit_connect(
    d: &Shared,
    actor: &Actor,
    params: &Map<String, Value>,
    decision: &cordon_policy::Decision,
    host: &str,
    started: Instant,
) -> Result<u64, cordon_audit::AuditError> {
    let rec = DecisionRecord {
        kind: EventKind::TcpConnect,
        actor,
        connector: None,
        action: "tcp.connect",
        params,
        decision,
        outcome: None,
        host: Some(host),
        dst: actor.origin.dst,
        http: None,
        started,
    };
    append(&d.audit, rec.build()).await
}

fn tcp_params(actor: &Actor, host: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ip".into(), json!(actor.origin.dst.ip().to_string()));
    m.insert("port".into(), json!(actor.origin.dst.port()));
    m.insert("host".into(), json!(host));
    m
}

fn is_cordon_itself(d: &Shared, actor: &Actor) -> bool {
    let dst = actor.origin.dst;
    dst.ip().is_loopback() && (dst.port() == d.proxy_port || dst.port() == d.dns_port)
}

fn own_listener_decision(d: &Shared) -> cordon_policy::Decision {
    refusal(
        d,
        "cordon-listener",
        "agents may not connect to Cordon's own listeners",
    )
}

fn refusal(d: &Shared, rule: &str, reason: &str) -> cordon_policy::Decision {
    cordon_policy::Decision {
        verdict: Verdict::Deny,
        rule_id: Arc::from(rule),
        reason: Arc::from(reason),
        decided_by: Arc::from(""),
        policy_version: Arc::from(d.policy.version()),
    }
}

/// Refuse with a RST so the client fails at once instead of waiting.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}
