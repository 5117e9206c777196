//! TLS for Cordon's intercepting proxy.
//!
//! * [`CertAuthority`] - the host-local CA (`ca.pem` / `ca.key`), the
//!   per-name leaf cache, and the agent-facing [`rustls::ServerConfig`]
//!   ([`CertAuthority::server_config`], [`CertAuthority::accept`]).
//! * [`UpstreamTls`] - verified client connections to the real servers;
//!   a bad certificate is [`TlsError::UpstreamVerify`].
//! * [`peek_client_hello`] - protocol detection on a connection's first
//!   bytes (its own crate, `cordon-tls-peek`, re-exported here).
//! * [`AGENT_CA_ENV`] / [`CertAuthority::write_agent_bundle`] - how agents
//!   are made to trust the CA.
//!
//! Only the aws-lc-rs crypto provider is used; `ring` is not linked.

mod alpn;
mod bundle;
mod ca;
mod error;
mod leaf_cache;
mod mint;
mod secure_fs;
mod server;
mod system_roots;
mod upstream;

#[cfg(feature = "testing")]
pub mod testing;

pub use alpn::{ALPN_H2, ALPN_HTTP1, Alpn, UpstreamAlpn};
pub use bundle::{AGENT_CA_ENV, agent_ca_env};
pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CertAuthority};
pub use cordon_tls_peek::{ClientHelloInfo, MAX_PEEK, Peek, peek_client_hello};
pub use error::TlsError;
pub use leaf_cache::LeafOptions;
pub use server::Intercepted;
pub use upstream::UpstreamTls;
