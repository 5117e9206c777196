//! One redirected connection: where it enters, where it is decided, where
//! it leaves. The kernel's record says who connected and where to; the
//! first bytes say whether Cordon can see actions (TLS or HTTP) or only a
//! `tcp.connect`.
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use cordon_audit::{EventKind, Outcome, OutcomeState};
use cordon_policy::{Decision, Source, Verdict};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

use super::{
    detect::{Detected, FIRST_BYTE_WAIT, FIRST_BYTE_WAIT_RAW_ALLOWED, detect},
    env::Env,
    pipeline::outcome,
    serve_http::{HttpCtx, serve},
};
use crate::request::{
    Actor, Answer, Ask, Attribution, Kind, Pinned, Refusal,
    caps::CapHit,
    probes::{ProbeAnswer, ProbeHit},
    record::{DecisionRecord, append_refusal, record_refusal},
};

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(env: Env, client: TcpStream, peer: SocketAddr) {
    // Enters: the kernel's record of the flow, taken by the client's port.
    let Some(origin) = env.flows.origin(&peer) else {
        tracing::warn!(%peer, "connection without a redirect record (not from an agent): refused");
        return reset(client);
    };
    let Some(agent) = env.flows.agent(origin.cgroup_id) else {
        tracing::warn!(
            cgroup_id = origin.cgroup_id,
            "connection from an unknown cgroup: refused"
        );
        return reset(client);
    };
    // Held for as long as the connection lives. Checked before anything
    // else is spent on the connection (not even /proc is read).
    let _permit = match env.admission.connection(&agent) {
        Ok(permit) => permit,
        Err(hit) => {
            reset(client);
            if hit.opens_burst {
                refuse_over_cap(&env, Actor::new(agent, origin), &hit).await;
            }
            return;
        }
    };
    let mut actor = Actor::unread(agent, origin);
    let started = Instant::now();
    let host = env
        .flows
        .resolved(&actor.agent, origin.dst.ip())
        .unwrap_or_default();
    let params = tcp_params(&actor, &host);
    // The flow's snapshot: its address is decided under it, and so is its
    // tcp.connect when it turns out not to be HTTP.
    let pinned = env.snapshots.pin();
    let itself = is_cordon_itself(&env, &actor);

    // Decided, first at the network layer. For connections Cordon can read
    // (TLS, HTTP) only the address guard applies here and each request is
    // then decided as an action; others are decided as tcp.connect alone.
    // The static answer only: limits and approvals apply to the decision
    // that is recorded below, not to this look at the address.
    let net = pinned.policy.as_ref().map(|s| {
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
        .is_none_or(|n| n.source == Source::AddressGuard);
    let raw_allowed = net.as_ref().is_some_and(|n| n.verdict == Verdict::Allow);
    let wait = if raw_allowed {
        FIRST_BYTE_WAIT_RAW_ALLOWED
    } else {
        FIRST_BYTE_WAIT
    };
    let detected = if itself || guarded {
        Detected::Other
    } else {
        detect(&client, wait).await
    };
    // A repeat of a reset probe is counted, not recorded: nothing else is
    // spent on it (not even /proc is read), and the peer already reset it.
    if let (Detected::Reset, Some(decision)) = (&detected, &net) {
        let answer = ProbeAnswer {
            rule: decision.rule_id.clone(),
            allowed: decision.verdict == Verdict::Allow,
        };
        if env.probes.reset_probe(&actor.agent, origin.dst, answer) == ProbeHit::Counted {
            return;
        }
    }
    actor.read_exe();
    // Set once the flow is one Cordon serves (not for a probe it only
    // records): requests and answers go out as written.
    if !matches!(detected, Detected::Reset | Detected::Stalled)
        && let Err(e) = client.set_nodelay(true)
    {
        tracing::debug!(%peer, "TCP_NODELAY: {e}");
    }
    let flow = Flow {
        env: &env,
        pinned: &pinned,
        actor: &actor,
        params: &params,
        host: &host,
        started,
    };

    if itself {
        flow.refuse(
            Kind::CordonListener,
            "agents may not connect to Cordon's own listeners",
        )
        .await;
        return reset(client);
    }

    match detected {
        Detected::Tls { sni } => {
            // Boxed, as is `serve` below: see the size test.
            Box::pin(intercept_tls(&flow, client, sni)).await;
        }
        Detected::Http => {
            let ctx = HttpCtx {
                env: env.clone(),
                actor: actor.clone(),
                sni: None,
                tls: false,
                resolved: (!host.is_empty()).then(|| host.clone()),
                h2: false,
                upgrades: None,
            };
            env.conns
                .until_cut(&actor.agent, Box::pin(serve(ctx, client)))
                .await;
        }
        Detected::Reset => {
            // Recorded, so an agent probing destinations leaves a trail, but
            // with the static answer: no approval is asked for a client that
            // is gone, and nothing is connected.
            match net {
                Some(decision) => flow.record_static(&decision).await,
                None => {
                    flow.refuse(
                        Kind::Policy {
                            rule: "no-policy-loaded".into(),
                            source: Source::NoPolicyLoaded,
                        },
                        "no policy is loaded",
                    )
                    .await
                }
            }
            // The peer reset it already: closing is all that is left.
            drop(client);
        }
        Detected::Stalled => {
            flow.refuse(
                Kind::TlsHandshake,
                "the client never finished its TLS ClientHello",
            )
            .await;
            reset(client);
        }
        Detected::Other => {
            let Answer::Allow { audit_id } = env.decider.decide(&pinned, flow.ask()).await else {
                return reset(client);
            };
            let started = Instant::now();
            let guard = env.conns.register(&actor.agent);
            let ended = tokio::select! {
                ended = connect_and_splice(&actor, client) => ended,
                _ = guard.cut.wait() => {
                    tracing::info!(agent = %actor.agent.chain_display(), "connection cut by the kill switch");
                    Err((OutcomeState::Aborted, "cut by the kill switch".to_string()))
                }
                // A raw stream has no request to finish: waiting out the drain's bound
                // would only hold the stop (or the upgrade) back, so it ends at once.
                _ = env.conns.draining() => {
                    tracing::info!(agent = %actor.agent.chain_display(), "tcp flow cut: the daemon is stopping");
                    Err((OutcomeState::Aborted, "cut: the daemon stopped".to_string()))
                }
            };
            record_flow_outcome(&env, &actor, audit_id, started, ended);
        }
    }
}

async fn intercept_tls(flow: &Flow<'_>, client: TcpStream, sni: Option<String>) {
    let env = flow.env;
    let fallback = if flow.host.is_empty() {
        flow.actor.origin.dst.ip().to_string()
    } else {
        flow.host.to_string()
    };
    let accepted =
        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, env.ca.accept(client, &fallback)).await;
    let intercepted = match accepted {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            tracing::info!(agent = %flow.actor.agent.chain_display(), "TLS handshake with the agent failed: {e}");
            flow.refuse(Kind::TlsHandshake, &format!("TLS handshake failed: {e}"))
                .await;
            return;
        }
        Err(_) => {
            flow.refuse(
                Kind::TlsHandshake,
                "the client never finished its TLS handshake",
            )
            .await;
            return;
        }
    };
    let h2 = intercepted.alpn() == cordon_tls::Alpn::H2;
    let ctx = HttpCtx {
        env: env.clone(),
        actor: flow.actor.clone(),
        sni: sni.or(intercepted.from_sni.then(|| intercepted.name.clone())),
        tls: true,
        resolved: (!flow.host.is_empty()).then(|| flow.host.to_string()),
        h2,
        upgrades: None,
    };
    env.conns
        .until_cut(&flow.actor.agent, serve(ctx, intercepted.stream))
        .await;
}

/// How a spliced flow ended: its byte counts, or why it failed.
type FlowEnd = Result<super::splice::SpliceStats, (OutcomeState, String)>;

/// Leaves: to the original destination, bytes both ways.
async fn connect_and_splice(actor: &Actor, client: TcpStream) -> FlowEnd {
    let dst = actor.origin.dst;
    match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(upstream)) => {
            if let Err(e) = upstream.set_nodelay(true) {
                tracing::debug!(%dst, "TCP_NODELAY: {e}");
            }
            let stats = super::splice::splice(client, upstream).await;
            tracing::debug!(agent = %actor.agent.chain_display(), %dst, up = stats.up, down = stats.down, "tcp flow ended");
            Ok(stats)
        }
        Ok(Err(e)) => {
            tracing::info!(agent = %actor.agent.chain_display(), %dst, "upstream connect failed: {e}");
            reset(client);
            Err((
                OutcomeState::Failed,
                format!("upstream connect failed: {e}"),
            ))
        }
        Err(_) => {
            tracing::info!(agent = %actor.agent.chain_display(), %dst, "upstream connect timed out");
            reset(client);
            Err((OutcomeState::Failed, "upstream connect timed out".into()))
        }
    }
}

/// The outcome record of an allowed `tcp.connect` flow, when it ends.
fn record_flow_outcome(env: &Env, actor: &Actor, audit_id: u64, started: Instant, ended: FlowEnd) {
    let base = Outcome {
        duration: Some(started.elapsed()),
        ..outcome::of(
            actor,
            None,
            "tcp.connect",
            audit_id,
            OutcomeState::Completed,
        )
    };
    let outcome = match ended {
        Ok(stats) => Outcome {
            bytes_up: Some(stats.up),
            bytes_down: Some(stats.down),
            ..base
        },
        Err((state, error)) => Outcome {
            state,
            error: Some(error),
            ..base
        },
    };
    outcome::write(env, outcome);
}

/// One flow being classified, and how its refusals are recorded.
struct Flow<'a> {
    env: &'a Env,
    pinned: &'a Pinned,
    actor: &'a Actor,
    params: &'a Map<String, Value>,
    host: &'a str,
    started: Instant,
}

impl Flow<'_> {
    fn ask(&self) -> Ask<'_> {
        Ask {
            kind: EventKind::TcpConnect,
            actor: self.actor,
            connector: None,
            action: "tcp.connect",
            params: self.params,
            host: Some(self.host),
            http: None,
            started: self.started,
        }
    }

    /// Records a flow Cordon closes without forwarding. Nothing leaves, so
    /// a record that cannot be written is logged at error level (naming the
    /// flow) and the flow is closed all the same; a flow that is forwarded
    /// is recorded by the decider, which refuses it when its record fails.
    async fn refuse(&self, kind: Kind, reason: &str) {
        let attribution = Attribution::cordon(self.pinned.version().clone());
        let refusal = Refusal::new(kind, reason, attribution);
        record_refusal(&self.env.audit, &self.ask(), None, refusal).await;
    }

    /// Records the static answer for a client that left before it could be
    /// classified: an agent probing destinations leaves a trail, but no
    /// approval is asked for and nothing is connected.
    async fn record_static(&self, decision: &Decision) {
        let ask = self.ask();
        let rec = DecisionRecord::of(&ask, decision, EventKind::TcpConnect);
        append_refusal(&self.env.audit, rec.build()).await;
    }
}

/// Records the refusal that opened a burst of connections over a cap
/// (the rest of the burst is counted and summed up by the daemon). The
/// connection is already closed: the agent does not wait on the trail.
async fn refuse_over_cap(env: &Env, actor: Actor, hit: &CapHit) {
    let host = env
        .flows
        .resolved(&actor.agent, actor.origin.dst.ip())
        .unwrap_or_default();
    let params = tcp_params(&actor, &host);
    let ask = Ask {
        kind: EventKind::TcpConnect,
        actor: &actor,
        connector: None,
        action: "tcp.connect",
        params: &params,
        host: Some(&host),
        http: None,
        started: Instant::now(),
    };
    let version = env.snapshots.pin().version().clone();
    crate::request::caps::record(&env.audit, &ask, hit, version).await;
}

fn tcp_params(actor: &Actor, host: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ip".into(), json!(actor.origin.dst.ip().to_string()));
    m.insert("port".into(), json!(actor.origin.dst.port()));
    m.insert("host".into(), json!(host));
    m
}

fn is_cordon_itself(env: &Env, actor: &Actor) -> bool {
    let dst = actor.origin.dst;
    let s = env.settings;
    dst.ip().is_loopback()
        && (dst.port() == s.proxy_port
            || dst.port() == s.dns_port
            || s.console_port == Some(dst.port()))
}

/// Refuse with a RST so the client fails at once instead of waiting.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn returns, without calling it.
    fn future_size<A, B, C, Fut>(_: impl FnOnce(A, B, C) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn a_connection_task_is_small_whatever_it_turns_out_to_carry() {
        // Every connection's task is as large as its largest branch for its
        // whole life: the TLS and HTTP branches are boxed so that an idle
        // raw flow (of which the daemon holds thousands) does not pay for
        // them (11 KiB unboxed).
        let size = future_size(handle);
        assert!(size <= 4096, "a connection's task takes {size} bytes");
    }
}
