//! Serving agents' DNS datagrams.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::RData,
};
use serde_json::{Map, json};
use tokio::net::UdpSocket;

use cordon_audit::EventKind;

use crate::daemon::{
    Shared,
    audit::Actor,
    enforce::{Ask, Verdicted, decide_and_record},
};

pub async fn serve(d: Shared, sock: UdpSocket) {
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
        tokio::spawn(async move {
            if let Some(reply) = answer(&d, &query, peer).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

/// Decides one query and returns the bytes to send back.
pub async fn answer(d: &Shared, query: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let msg = Message::from_vec(query).ok()?;
    if msg.message_type() != MessageType::Query {
        return None;
    }
    let Some(origin) = d.maps.dns_client(&peer) else {
        tracing::warn!(%peer, "DNS query without a kernel record (not from an agent): refused");
        return refuse(&msg);
    };
    let Some(agent) = d.registry.lookup(origin.cgroup_id) else {
        tracing::warn!(
            cgroup_id = origin.cgroup_id,
            "DNS query from an unknown cgroup: refused"
        );
        return refuse(&msg);
    };
    let Some(q) = msg.queries().first() else {
        return refuse(&msg);
    };
    let name = q
        .name()
        .to_utf8()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let qtype = q.query_type().to_string();
    let mut params = Map::new();
    params.insert("name".into(), json!(name));
    params.insert("type".into(), json!(qtype));
    let actor = Actor::new(agent.clone(), origin);
    let verdict = decide_and_record(
        d,
        Ask {
            kind: EventKind::DnsQuery,
            actor: &actor,
            connector: None,
            action: "dns.query",
            params: &params,
            host: Some(&name),
            http: None,
            started,
        },
    )
    .await;
    if !matches!(verdict, Verdicted::Allow { .. }) {
        return refuse(&msg);
    }
    let Some(reply) = super::upstream::forward(&d.cfg.dns_upstream, query).await else {
        return servfail(&msg);
    };
    if let Ok(ans) = Message::from_vec(&reply) {
        let chain = agent.chain_display();
        for rec in ans.answers() {
            let ttl = Duration::from_secs(rec.ttl().into());
            match rec.data() {
                RData::A(a) => d.names.remember(&chain, &name, a.0.into(), ttl),
                RData::AAAA(a) => d.names.remember(&chain, &name, a.0.into(), ttl),
                _ => {}
            }
        }
    }
    Some(reply)
}

fn refuse(q: &Message) -> Option<Vec<u8>> {
    reply_code(q, ResponseCode::Refused)
}

fn servfail(q: &Message) -> Option<Vec<u8>> {
    reply_code(q, ResponseCode::ServFail)
}

fn reply_code(q: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(q.id(), q.op_code(), code);
    m.set_recursion_desired(q.recursion_desired());
    m.set_recursion_available(true);
    m.add_queries(q.queries().to_vec());
    m.to_vec().ok()
}
