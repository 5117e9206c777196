//! ClientHellos as a real rustls client sends them.
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::ServerName;

/// `None` for a host that is no DNS name (an address, or one with a port).
pub fn client_hello(host: &str) -> Option<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls's default versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut conn = ClientConnection::new(Arc::new(config), name).expect("a client connection");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("writing the ClientHello");
    Some(out)
}
