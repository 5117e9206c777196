//! Serving agents' DNS datagrams.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use cordon_dns_wire::{Answered, Query, Question, answered_addresses};
use serde_json::{Map, json};
use tokio::net::UdpSocket;
use tokio_util::task::TaskTracker;

use cordon_audit::EventKind;

use super::Env;
use crate::request::{Actor, Answer, Ask, caps};

/// Serves `sock`. Each query is answered on a task of `inflight`, so a
/// stopping daemon can let the queries it took finish (and remember their
/// names) before it hands its name cache on.
pub async fn serve(d: Env, sock: UdpSocket, inflight: TaskTracker) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("dns recv: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let (d, sock) = (d.clone(), sock.clone());
        inflight.spawn(async move {
            if let Some(reply) = answer(&d, &query, peer).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

/// Decides one query and returns the bytes to send back.
pub async fn answer(d: &Env, datagram: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let query = Query::parse(datagram)?;
    let Some(origin) = d.clients.origin(&peer) else {
        tracing::warn!(%peer, "DNS query without a kernel record (not from an agent): refused");
        return query.refused();
    };
    let Some(agent) = d.clients.agent(origin.cgroup_id) else {
        tracing::warn!(
            cgroup_id = origin.cgroup_id,
            "DNS query from an unknown cgroup: refused"
        );
        return query.refused();
    };
    let Some(Question { name, qtype }) = query.question() else {
        tracing::debug!(%peer, "DNS query without exactly one plainly named question: refused");
        return query.refused();
    };
    let mut params = Map::new();
    params.insert("name".into(), json!(name));
    params.insert("type".into(), json!(qtype));
    let actor = Actor::new(agent.clone(), origin);
    let pinned = d.snapshots.pin();
    let ask = |params| Ask {
        kind: EventKind::DnsQuery,
        actor: &actor,
        connector: None,
        action: "dns.query",
        params,
        host: Some(&name),
        http: None,
        started,
    };
    // Over its rate the agent gets REFUSED; only the first refusal of a
    // burst is recorded on its own (the daemon sums up the rest).
    if let Err(hit) = d.admission.dns_query(&agent) {
        if hit.opens_burst {
            caps::record(&d.audit, &ask(&params), &hit, pinned.version().clone()).await;
        }
        return query.refused();
    }
    let verdict = d.decider.decide(&pinned, ask(&params)).await;
    if !matches!(verdict, Answer::Allow { .. }) {
        return query.refused();
    }
    let Some(reply) = super::upstream::forward(&d.upstreams, datagram).await else {
        return query.servfail();
    };
    for Answered { ip, ttl } in answered_addresses(&reply) {
        d.clients.remember(&agent, &name, ip, ttl);
    }
    Some(reply)
}
