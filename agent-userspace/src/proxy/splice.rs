//! Byte splicing between the agent and its upstream for flows Cordon cannot
//! read (raw `tcp.connect`). Each direction waits for its source to become
//! readable holding no buffer, and frees its buffer again once the source is
//! drained: thousands of idle flows (database pools, held sockets) cost only
//! their sockets, where `copy_bidirectional` keeps 16 KiB per flow for its
//! whole life. A slow reader stalls the other side's reads (backpressure), an
//! end of stream half-closes that direction only, and an error in either
//! direction ends both, as with `copy_bidirectional`.
use std::io::ErrorKind;

use tokio::{
    io::AsyncWriteExt,
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

const CHUNK: usize = 8 * 1024;

pub struct SpliceStats {
    pub up: u64,
    pub down: u64,
}

pub async fn splice(client: TcpStream, upstream: TcpStream) -> SpliceStats {
    let (mut client_r, mut client_w) = client.into_split();
    let (mut upstream_r, mut upstream_w) = upstream.into_split();
    match tokio::try_join!(
        pump(&mut client_r, &mut upstream_w),
        pump(&mut upstream_r, &mut client_w)
    ) {
        Ok((up, down)) => SpliceStats { up, down },
        Err(e) => {
            tracing::debug!("splice ended: {e}");
            SpliceStats { up: 0, down: 0 }
        }
    }
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`.
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf) -> std::io::Result<u64> {
    let mut total = 0u64;
    loop {
        from.readable().await?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.try_read(&mut buf) {
                Ok(0) => {
                    to.shutdown().await?;
                    return Ok(total);
                }
                Ok(n) => {
                    to.write_all(&buf[..n]).await?;
                    total += n as u64;
                }
                // Drained: the buffer is dropped before waiting again.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
        (a.expect("connect"), b.expect("accept").0)
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_each_end_of_stream_half_closes_only_its_direction() {
        // agent <-> (client | splice | upstream) <-> server
        let (mut agent, client) = pair().await;
        let (upstream, mut server) = pair().await;
        let spliced = tokio::spawn(splice(client, upstream));
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        agent.write_all(&payload).await.expect("agent write");
        agent.shutdown().await.expect("agent half-close");
        let mut got = vec![];
        server.read_to_end(&mut got).await.expect("server read");
        assert_eq!(got, payload);
        // The server still answers after the agent's half-close.
        server.write_all(b"after your FIN").await.expect("reply");
        server.shutdown().await.expect("server close");
        let mut reply = vec![];
        agent.read_to_end(&mut reply).await.expect("agent read");
        assert_eq!(reply, b"after your FIN");
        let stats = spliced.await.expect("splice task");
        assert_eq!((stats.up, stats.down), (300_000, 14));
    }
}
