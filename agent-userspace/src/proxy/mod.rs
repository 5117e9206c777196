//! The transparent proxy. Every TCP connection an agent makes arrives here
//! (the eBPF connect hooks rewrote its destination):
//! - `conn`: where a connection enters and is classified,
//! - `http`: where each request becomes an action and is decided,
//! - `upstream`: where it leaves, pooled and verified.
mod answer;
mod body;
mod checks;
mod conn;
mod cost;
pub mod credentials;
mod detect;
pub mod enrich;
mod h1guard;
mod headers;
mod http;
mod redact;
mod splice;
pub mod upstream;

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
