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
    detect::{Detected, FIRST_BYTE_WAIT, FIRST_BYTE_WAIT_RAW_ALLOWED, detect},
    http::{HttpCtx, serve},
};
use crate::daemon::{
    Shared,
    audit::{Actor, DecisionRecord, append_refusal},
    enforce::{Ask, Verdicted, decide_and_record},
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
    let actor = Actor::new(agent, origin);
    let started = Instant::now();
    let host = d
        .names
        .lookup(&actor.agent.chain_display(), origin.dst.ip())
        .unwrap_or_default();
    let params = tcp_params(&actor, &host);

    if is_cordon_itself(&d, &actor) {
        let decision = own_listener_decision(&d);
        record_unforwarded(&d, &actor, &params, &decision, &host, started).await;
        return reset(client);
    }

    // Decided, first at the network layer. For connections Cordon can read
    // (TLS, HTTP) only the address guard applies here and each request is
    // then decided as an action; others are decided as tcp.connect alone.
    // The static answer only: limits and approvals apply to the decision
    // that is recorded below, not to this look at the address.
    let net = d.policy.engine().snapshot().map(|s| {
        s.decide(&cordon_policy::ActionRequest {
            chain: &actor.agent.chain,
            action: "tcp.connect",
            params: &params,
            request: None,
            now: chrono::Utc::now(),
        })
    });
    let guarded = net
        .as_ref()
        .is_none_or(|n| n.verdict == Verdict::Deny && &*n.rule_id == "ssrf-guard");
    let raw_allowed = net.as_ref().is_some_and(|n| n.verdict == Verdict::Allow);
    let wait = if raw_allowed {
        FIRST_BYTE_WAIT_RAW_ALLOWED
    } else {
        FIRST_BYTE_WAIT
    };
    let detected = if guarded {
        Detected::Other
    } else {
        detect(&client, wait).await
    };
    match detected {
        Detected::Tls { sni } => {
            intercept_tls(d, actor, client, sni, host).await;
        }
        Detected::Http => {
            let ctx = HttpCtx {
                d: d.clone(),
                actor,
                sni: None,
                tls: false,
                resolved: (!host.is_empty()).then_some(host),
                h2: false,
            };
            let guard = d.conns.register(&ctx.actor.agent);
            tokio::select! {
                _ = serve(Arc::new(ctx), client) => {}
                _ = guard.token.cancelled() => {}
            }
        }
        Detected::Reset => {
            // Recorded, so an agent probing destinations leaves a trail, but
            // with the static answer: no approval is asked for a client that
            // is gone, and nothing is connected.
            let decision =
                net.unwrap_or_else(|| refusal(&d, "no-policy-loaded", "no policy is loaded"));
            record_unforwarded(&d, &actor, &params, &decision, &host, started).await;
            reset(client);
        }
        Detected::Stalled => {
            let decision = refusal(
                &d,
                "tls-handshake",
                "the client never finished its TLS ClientHello",
            );
            record_unforwarded(&d, &actor, &params, &decision, &host, started).await;
            reset(client);
        }
        Detected::Other => {
            let verdict = decide_and_record(
                &d,
                Ask {
                    kind: EventKind::TcpConnect,
                    actor: &actor,
                    connector: None,
                    action: "tcp.connect",
                    params: &params,
                    host: Some(&host),
                    http: None,
                    started,
                },
            )
            .await;
            if !matches!(verdict, Verdicted::Allow { .. }) {
                return reset(client);
            }
            let guard = d.conns.register(&actor.agent);
            tokio::select! {
                _ = connect_and_splice(&actor, client) => {}
                _ = guard.token.cancelled() => tracing::info!(agent = %actor.agent.chain_display(), "connection cut by the kill switch"),
            }
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
            record_unforwarded(
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
            record_unforwarded(
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
        d: d.clone(),
        actor,
        sni: sni.or(intercepted.from_sni.then(|| intercepted.name.clone())),
        tls: true,
        resolved: (!host.is_empty()).then_some(host),
        h2,
    };
    let guard = d.conns.register(&ctx.actor.agent);
    tokio::select! {
        _ = serve(Arc::new(ctx), intercepted.stream) => {}
        _ = guard.token.cancelled() => {}
    }
}

/// Leaves: to the original destination, bytes both ways.
async fn connect_and_splice(actor: &Actor, client: TcpStream) {
    let dst = actor.origin.dst;
    match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(upstream)) => {
            let _ = upstream.set_nodelay(true);
            let stats = super::splice::splice(client, upstream).await;
            tracing::debug!(agent = %actor.agent.chain_display(), %dst, up = stats.up, down = stats.down, "tcp flow ended");
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

/// Records a flow that is closed without being forwarded (refused, or the
/// client is gone). Nothing leaves, so a record that cannot be written is
/// logged at error level (by `append_refusal`, naming the flow) and the
/// flow is closed all the same; a flow that is forwarded is recorded by
/// `decide_and_record`, which refuses it when its record fails.
async fn record_unforwarded(
    d: &Shared,
    actor: &Actor,
    params: &Map<String, Value>,
    decision: &cordon_policy::Decision,
    host: &str,
    started: Instant,
) {
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
    append_refusal(&d.audit, rec.build()).await;
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
