//! The transparent proxy. Every TCP connection an agent makes arrives here
//! (the eBPF connect hooks rewrote its destination):
//! - `conn`: where a connection enters and is classified;
//! - `serve_http`: hyper's server for what Cordon can read (HTTP/1 behind
//!   the framing gate `h1guard`, HTTP/2);
//! - `pipeline`: where each request becomes an action, is decided and
//!   leaves (`pipeline/mod.rs` lists the stages);
//! - `upstream`: where it leaves, pooled and verified.
//!
//! The proxy sees the rest of Cordon only through `env::ProxyEnv`.
mod answer;
mod body;
mod conn;
mod cost;
mod detect;
pub mod enrich;
pub mod env;
mod h1guard;
mod headers;
mod inject;
pub mod live;
mod pipeline;
mod redact;
mod serve_http;
mod splice;
pub mod trip;
pub mod upstream;

/// The vault entry whose credential a request would carry if allowed (its
/// name only), as the pipeline's credential stage would choose it: what an
/// approval shows the operator.
pub fn credential_entry(
    pinned: &crate::request::Pinned,
    agent: &str,
    connector: Option<&str>,
    host: &str,
    action: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    pipeline::credential_plan::choose(pinned, agent, connector, host, action, params)
        .map(|c| c.entry)
}

use tokio::net::TcpListener;

pub use env::{Env, ProxyEnv};

/// Accepts on one of a core's listeners and serves each connection on the
/// runtime this runs on (a current-thread runtime per core): a connection
/// stays on the core that accepted it until it closes. `accepted` counts
/// the core's accepts (`cordon_proxy_accepted_total{core}`).
pub async fn serve(
    env: Env,
    listener: TcpListener,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let accepted = env.conns.accepted();
                let env = env.clone();
                tokio::spawn(async move {
                    conn::handle(env, stream, peer).await;
                    drop(accepted);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("proxy accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
