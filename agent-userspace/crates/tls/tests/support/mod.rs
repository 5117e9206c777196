//! Shared loopback plumbing for the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use cordon_tls::CertAuthority;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

pub const GREETING: &[u8] = b"hello from cordon";

pub fn client_config(
    trust: &CertificateDer<'static>,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What the intercepting side saw for one connection.
#[derive(Debug)]
pub struct ServerView {
    pub name: String,
    pub from_sni: bool,
    pub alpn: cordon_tls::Alpn,
}

/// Accepts one connection through `CertAuthority::accept`, writes the
/// greeting (so TLS 1.3 tickets reach the client before it closes) and
/// reports what it negotiated.
pub async fn serve_one(
    ca: CertAuthority,
    fallback: &'static str,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<ServerView, cordon_tls::TlsError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut intercepted = ca.accept(tcp, fallback).await?;
        intercepted.stream.write_all(GREETING).await.unwrap();
        intercepted.stream.flush().await.unwrap();
        let mut sink = Vec::new();
        // The client closes after reading; wait for it so tickets are sent.
        let _ = intercepted.stream.read_to_end(&mut sink).await;
        Ok(ServerView {
            alpn: intercepted.alpn(),
            name: intercepted.name,
            from_sni: intercepted.from_sni,
        })
    });
    (addr, task)
}

/// Connects, reads the greeting, closes; returns the client connection
/// state observed after the handshake.
pub async fn connect_and_read(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<ClientView> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config).connect(server_name, tcp).await?;
    let mut buf = vec![0u8; GREETING.len()];
    tls.read_exact(&mut buf).await?;
    assert_eq!(buf, GREETING);
    let (_, conn) = tls.get_ref();
    let view = ClientView {
        kind: conn.handshake_kind(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        leaf: conn.peer_certificates().unwrap()[0].clone().into_owned(),
    };
    tls.shutdown().await?;
    Ok(view)
}

#[derive(Debug)]
pub struct ClientView {
    pub kind: Option<rustls::HandshakeKind>,
    pub alpn: Option<Vec<u8>>,
    pub leaf: CertificateDer<'static>,
}
