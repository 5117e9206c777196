//! Byte splicing between the agent and its upstream. copy_bidirectional
//! applies backpressure in both directions (a slow reader stalls the other
//! side's reads) and half-closes each direction when its source ends.
use tokio::net::TcpStream;

pub struct SpliceStats {
    pub up: u64,
    pub down: u64,
}

pub async fn splice(mut client: TcpStream, mut upstream: TcpStream) -> SpliceStats {
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => SpliceStats { up, down },
        Err(e) => {
            tracing::debug!("splice ended: {e}");
            SpliceStats { up: 0, down: 0 }
        }
    }
}
