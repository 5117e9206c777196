//! The agent-facing side over real loopback TLS.

mod support;

use std::net::IpAddr;
use std::sync::{Arc, Barrier};

use cordon_tls::{Alpn, CertAuthority};
use rustls::HandshakeKind;
use rustls::version::{TLS12, TLS13};
use support::{client_config, connect_and_read, serve_one};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

fn new_ca() -> (tempfile::TempDir, CertAuthority) {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::load_or_create(&dir.path().join("ca")).unwrap();
    (dir, ca)
}

fn sans(der: &[u8]) -> (Vec<String>, Vec<IpAddr>) {
    let (_, cert) = parse_x509_certificate(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (dns, ips)
}

#[tokio::test]
async fn intercepted_handshake_validates_against_cordon_ca_with_sni_san() {
    let (_dir, ca) = new_ca();
    let (addr, server) = serve_one(ca.clone(), "127.0.0.1").await;
    let config = client_config(ca.ca_der(), &[b"http/1.1"], &[&TLS13]);
    let view = connect_and_read(addr, config, "api.github.com")
        .await
        .unwrap();

    let (dns, ips) = sans(&view.leaf);
    assert_eq!(dns, vec!["api.github.com".to_string()]);
    assert!(ips.is_empty());
    let (_, leaf) = parse_x509_certificate(&view.leaf).unwrap();
    let (_, ca_cert) = parse_x509_certificate(ca.ca_der()).unwrap();
    assert_eq!(leaf.issuer(), ca_cert.subject());
    assert_ne!(
        leaf.public_key().subject_public_key.data,
        ca_cert.public_key().subject_public_key.data,
        "the leaf must carry its own key, not the CA's"
    );
    assert!(!leaf.is_ca());
    let lifetime_s = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(lifetime_s <= 25 * 3600, "leaf lives {lifetime_s}s");
    assert!(leaf.validity().is_valid());

    let seen = server.await.unwrap().unwrap();
    assert_eq!(seen.name, "api.github.com");
    assert!(seen.from_sni);
}

#[tokio::test]
async fn client_trusting_another_ca_rejects_the_intercepted_leaf() {
    let (_dir, ca) = new_ca();
    let (_dir2, other) = new_ca();
    let (addr, server) = serve_one(ca, "127.0.0.1").await;
    let config = client_config(other.ca_der(), &[], &[&TLS13]);
    let err = connect_and_read(addr, config, "api.github.com")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(cordon_tls::TlsError::AgentHandshake { .. })
    ));
}

#[tokio::test]
async fn hello_without_sni_gets_leaf_for_fallback_ip() {
    let (_dir, ca) = new_ca();
    let (addr, server) = serve_one(ca.clone(), "127.0.0.1").await;
    // rustls sends no SNI when connecting to an IP address.
    let config = client_config(ca.ca_der(), &[], &[&TLS13]);
    let view = connect_and_read(addr, config, "127.0.0.1").await.unwrap();
    let (dns, ips) = sans(&view.leaf);
    assert!(dns.is_empty());
    assert_eq!(ips, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    let seen = server.await.unwrap().unwrap();
    assert_eq!(seen.name, "127.0.0.1");
    assert!(!seen.from_sni);
}

#[tokio::test]
async fn sni_only_server_config_refuses_hello_without_sni() {
    let (_dir, ca) = new_ca();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.map(|_| ())
    });
    let config = client_config(ca.ca_der(), &[], &[&TLS13]);
    assert!(connect_and_read(addr, config, "127.0.0.1").await.is_err());
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn alpn_negotiates_h2_or_http1_per_client_offer() {
    let (_dir, ca) = new_ca();
    for (offer, expected, wire) in [
        (
            &[&b"h2"[..], b"http/1.1"][..],
            Alpn::H2,
            Some(b"h2".to_vec()),
        ),
        (
            &[&b"http/1.1"[..]][..],
            Alpn::Http1,
            Some(b"http/1.1".to_vec()),
        ),
        (&[][..], Alpn::Http1, None),
    ] {
        let (addr, server) = serve_one(ca.clone(), "127.0.0.1").await;
        let config = client_config(ca.ca_der(), offer, &[&TLS13]);
        let view = connect_and_read(addr, config, "example.com").await.unwrap();
        assert_eq!(view.alpn, wire);
        assert_eq!(server.await.unwrap().unwrap().alpn, expected);
    }
}

async fn second_connection_resumes(version: &'static rustls::SupportedProtocolVersion, name: &str) {
    let (_dir, ca) = new_ca();
    let config = client_config(ca.ca_der(), &[b"h2"], &[version]);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let (addr, server) = serve_one(ca.clone(), "127.0.0.1").await;
        let view = connect_and_read(addr, Arc::clone(&config), name)
            .await
            .unwrap();
        server.await.unwrap().unwrap();
        kinds.push(view.kind);
    }
    assert_eq!(
        kinds,
        vec![Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]
    );
}

#[tokio::test]
async fn tls13_reconnect_resumes_with_ticket() {
    second_connection_resumes(&TLS13, "api.stripe.com").await;
}

#[tokio::test]
async fn reconnect_without_sni_resumes_through_fallback_config() {
    second_connection_resumes(&TLS13, "127.0.0.1").await;
}

#[tokio::test]
async fn tls12_reconnect_resumes() {
    second_connection_resumes(&TLS12, "api.stripe.com").await;
}

#[test]
fn concurrent_misses_for_one_name_generate_once() {
    let (_dir, ca) = new_ca();
    const THREADS: usize = 32;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let ca = ca.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                ca.leaf_for("brand-new.example.com").unwrap()
            })
        })
        .collect();
    let leaves: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ca.leaves_generated(), 1);
    assert!(leaves.iter().all(|l| Arc::ptr_eq(l, &leaves[0])));

    // Equivalent spellings share the entry; a different name mints anew.
    ca.leaf_for("Brand-New.example.com.").unwrap();
    assert_eq!(ca.leaves_generated(), 1);
    ca.leaf_for("other.example.com").unwrap();
    assert_eq!(ca.leaves_generated(), 2);
}

#[test]
fn invalid_names_are_refused_not_minted() {
    let (_dir, ca) = new_ca();
    assert!(matches!(
        ca.leaf_for("not a host"),
        Err(cordon_tls::TlsError::InvalidName { .. })
    ));
    assert_eq!(ca.leaves_generated(), 0);
}
