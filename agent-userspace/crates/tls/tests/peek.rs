//! Protocol detection against ClientHellos produced by a real rustls client.

use std::sync::Arc;

use cordon_tls::{ClientHelloInfo, Peek, peek_client_hello};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::ServerName;

fn client_hello(name: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let mut conn = ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[test]
fn real_client_hello_yields_sni_and_alpn() {
    let hello = client_hello("api.github.com", &[b"h2", b"http/1.1"]);
    assert_eq!(
        peek_client_hello(&hello),
        Peek::Tls(ClientHelloInfo {
            sni: Some("api.github.com".into()),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        })
    );
}

#[test]
fn every_truncation_of_a_client_hello_asks_for_more_bytes() {
    let hello = client_hello("api.github.com", &[]);
    for cut in 0..hello.len() {
        match peek_client_hello(&hello[..cut]) {
            Peek::NeedMore(n) => assert!(n > cut && n <= hello.len(), "cut {cut}: asked {n}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn client_hello_to_an_ip_has_no_sni() {
    let hello = client_hello("10.0.0.7", &[]);
    assert_eq!(
        peek_client_hello(&hello),
        Peek::Tls(ClientHelloInfo::default())
    );
}

#[test]
fn client_hello_split_across_records_is_reassembled() {
    let hello = client_hello("files.example.com", &[b"http/1.1"]);
    let body = &hello[5..];
    let (a, b) = body.split_at(7);
    let mut split = Vec::new();
    for part in [a, b] {
        split.extend_from_slice(&[0x16, 0x03, 0x01]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    assert_eq!(peek_client_hello(&split), peek_client_hello(&hello));
    assert_eq!(
        peek_client_hello(&split[..5 + 7 + 3]),
        Peek::NeedMore(5 + 7 + 5)
    );
    assert_eq!(
        peek_client_hello(&split[..5 + 7 + 5]),
        Peek::NeedMore(split.len())
    );
}

#[test]
fn corrupted_client_hello_is_other() {
    let mut hello = client_hello("api.github.com", &[]);
    // Claim the extensions block is one byte longer than what follows.
    let len = hello.len();
    hello.truncate(len - 1);
    let record_len = u16::from_be_bytes([hello[3], hello[4]]) - 1;
    hello[3..5].copy_from_slice(&record_len.to_be_bytes());
    let hs_len = (u32::from(hello[6]) << 16 | u32::from(hello[7]) << 8 | u32::from(hello[8])) - 1;
    hello[6..9].copy_from_slice(&hs_len.to_be_bytes()[1..]);
    assert_eq!(peek_client_hello(&hello), Peek::Other);
}

#[test]
fn plain_http_and_other_protocols_are_told_apart() {
    assert_eq!(
        peek_client_hello(b"POST /v1/charges HTTP/1.1\r\nHost: api.stripe.com\r\n"),
        Peek::Http { method: "POST" }
    );
    assert_eq!(peek_client_hello(b"\x00\x00\x00\x01"), Peek::Other);
    assert_eq!(peek_client_hello(b"SSH-2.0-x\r\n"), Peek::Other);
}
