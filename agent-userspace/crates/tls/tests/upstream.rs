//! The upstream side: verification against a test CA, typed failures,
//! ALPN offers and client-side resumption.

use std::path::PathBuf;
use std::sync::Arc;

use cordon_tls::testing::{TestCa, TestServerCert, self_signed_server_cert};
use cordon_tls::{TlsError, UpstreamAlpn, UpstreamTls};
use rustls::{CertificateError, HandshakeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake upstream accepting `conns` connections; each writes one byte.
async fn fake_upstream(
    cert: &TestServerCert,
    alpn: &[&[u8]],
    conns: usize,
) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config(alpn).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..conns {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"!").await;
                let mut sink = Vec::new();
                let _ = tls.read_to_end(&mut sink).await;
            }
        }
    });
    addr
}

fn test_ca_file(ca: &TestCa) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = ca.write_pem(dir.path()).unwrap();
    (dir, path)
}

async fn connect(
    upstream: &UpstreamTls,
    addr: std::net::SocketAddr,
    host: &str,
    alpn: UpstreamAlpn,
) -> Result<(Option<Vec<u8>>, Option<HandshakeKind>), TlsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = upstream.connect(host, tcp, alpn).await?;
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.unwrap();
    let (_, conn) = tls.get_ref();
    let out = (
        conn.alpn_protocol().map(<[u8]>::to_vec),
        conn.handshake_kind(),
    );
    tls.shutdown().await.unwrap();
    Ok(out)
}

#[tokio::test]
async fn upstream_signed_by_extra_ca_verifies_with_requested_alpn() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let cert = ca.server_cert(&["api.github.com"]).unwrap();
    let addr = fake_upstream(&cert, &[b"h2", b"http/1.1"], 2).await;
    let upstream = UpstreamTls::new(&[ca_file]).unwrap();

    let (alpn, _) = connect(&upstream, addr, "api.github.com", UpstreamAlpn::H2OrHttp1)
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (alpn, _) = connect(&upstream, addr, "api.github.com", UpstreamAlpn::Http1Only)
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn untrusted_upstream_certificate_is_a_typed_verify_error() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let rogue = self_signed_server_cert(&["api.github.com"]).unwrap();
    let addr = fake_upstream(&rogue, &[b"http/1.1"], 1).await;
    let upstream = UpstreamTls::new(&[ca_file]).unwrap();
    match connect(&upstream, addr, "api.github.com", UpstreamAlpn::Http1Only).await {
        Err(TlsError::UpstreamVerify { host, reason }) => {
            assert_eq!(host, "api.github.com");
            assert_eq!(reason, CertificateError::UnknownIssuer);
        }
        other => panic!("expected UpstreamVerify, got {other:?}"),
    }
}

#[tokio::test]
async fn upstream_certificate_for_another_name_is_a_verify_error() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let cert = ca.server_cert(&["evil.example.net"]).unwrap();
    let addr = fake_upstream(&cert, &[], 1).await;
    let upstream = UpstreamTls::with_only_extra_cas(&[ca_file]).unwrap();
    match connect(&upstream, addr, "api.github.com", UpstreamAlpn::H2OrHttp1).await {
        Err(TlsError::UpstreamVerify { host, reason }) => {
            assert_eq!(host, "api.github.com");
            assert!(
                matches!(reason, CertificateError::NotValidForNameContext { .. }),
                "{reason:?}"
            );
        }
        other => panic!("expected UpstreamVerify, got {other:?}"),
    }
}

#[tokio::test]
async fn upstream_ip_address_is_verified_against_ip_san() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let cert = ca.server_cert(&["127.0.0.1"]).unwrap();
    let addr = fake_upstream(&cert, &[], 1).await;
    let upstream = UpstreamTls::with_only_extra_cas(&[ca_file]).unwrap();
    connect(&upstream, addr, "127.0.0.1", UpstreamAlpn::Http1Only)
        .await
        .unwrap();
}

#[tokio::test]
async fn reconnect_to_upstream_resumes_session() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let cert = ca.server_cert(&["api.stripe.com"]).unwrap();
    let addr = fake_upstream(&cert, &[b"http/1.1"], 2).await;
    let upstream = UpstreamTls::with_only_extra_cas(&[ca_file]).unwrap();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let (_, kind) = connect(&upstream, addr, "api.stripe.com", UpstreamAlpn::Http1Only)
            .await
            .unwrap();
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        vec![Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]
    );
}

#[test]
fn no_roots_at_all_is_an_error() {
    assert!(matches!(
        UpstreamTls::with_only_extra_cas(&[]),
        Err(TlsError::NoTrustRoots)
    ));
}

#[test]
fn extra_ca_file_without_certificates_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    match UpstreamTls::new(std::slice::from_ref(&path)) {
        Err(TlsError::ExtraCa { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected ExtraCa, got {other:?}"),
    }
    let missing = dir.path().join("missing.pem");
    match UpstreamTls::new(std::slice::from_ref(&missing)) {
        Err(TlsError::Io { path: p, .. }) => assert_eq!(p, missing),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn client_configs_offer_the_documented_alpn() {
    let ca = TestCa::new("Test Upstream CA").unwrap();
    let (_dir, ca_file) = test_ca_file(&ca);
    let upstream = UpstreamTls::with_only_extra_cas(&[ca_file]).unwrap();
    let both: Arc<rustls::ClientConfig> = upstream.client_config(UpstreamAlpn::H2OrHttp1);
    assert_eq!(
        both.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let one = upstream.client_config(UpstreamAlpn::Http1Only);
    assert_eq!(one.alpn_protocols, vec![b"http/1.1".to_vec()]);
}
