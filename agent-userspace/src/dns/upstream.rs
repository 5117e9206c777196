//! Forwarding an allowed query to the upstream resolvers, in order, each
//! with a bounded wait.
use std::{net::SocketAddr, time::Duration};

use tokio::net::UdpSocket;

const PER_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    let id = query.get(..2)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + PER_UPSTREAM_TIMEOUT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            // Ignore anything that is not the answer to this query's id.
            if n >= 2 && &buf[..2] == id {
                buf.truncate(n);
                return Some(buf);
            }
        }
        tracing::warn!(upstream = %up, "DNS upstream did not answer in time");
    }
    None
}
