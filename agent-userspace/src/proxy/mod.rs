//! The transparent proxy. Every TCP connection an agent makes arrives here
//! (the eBPF connect hooks rewrote its destination); `conn` recovers where
//! it was going and who made it, asks policy, and splices or refuses.
mod conn;
mod splice;

use tokio::net::TcpListener;

use crate::daemon::Shared;

pub async fn serve(d: Shared, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::handle(d.clone(), stream, peer));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("proxy accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
