//! Protocol detection on a connection's first bytes (cordon-tls `peek`).
//!
//! Checks: it never panics; `NeedMore(n)` asks for more than it has and at
//! most MAX_PEEK; reading exactly as much as it asks for, step by step (the
//! proxy's way), reaches the same verdict as having every byte at once, and
//! more bytes never change a verdict; a ClientHello that both the peek and
//! rustls's own parser accept names the same SNI (up to case and the root
//! dot) and ALPN in both.
#![no_main]

use cordon_tls_peek::{MAX_PEEK, Peek, peek_client_hello};
use libfuzzer_sys::fuzz_target;
use rustls::server::Acceptor;

fuzz_target!(|data: &[u8]| {
    let whole = peek_client_hello(data);
    if let Peek::NeedMore(n) = whole {
        assert!(
            n > data.len() && n <= MAX_PEEK,
            "asked for {n} holding {}",
            data.len()
        );
        return;
    }
    assert_eq!(
        stepwise(data),
        whole,
        "reading step by step decided differently"
    );
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"\x16\x03\x01\x00\x04GET ");
    assert_eq!(
        peek_client_hello(&longer),
        whole,
        "more bytes changed the verdict"
    );
    if let Peek::Tls(info) = &whole
        && let Some((sni, alpn)) = rustls_view(data)
    {
        match (&info.sni, &sni) {
            (Some(ours), Some(theirs)) => assert!(
                same_host(ours, theirs),
                "SNI {ours:?} but rustls read {theirs:?}"
            ),
            (None, None) => {}
            (ours, theirs) => panic!("SNI {ours:?} but rustls read {theirs:?}"),
        }
        assert_eq!(info.alpn, alpn, "ALPN differs from rustls's");
    }
});

/// rustls drops the root dot RFC 6066 forbids; the peek keeps the name as
/// sent, and everything downstream compares hosts without case or root dot
/// (and the proxy refuses a Host that differs from the SNI).
fn same_host(ours: &str, theirs: &str) -> bool {
    let ours = ours.strip_suffix('.').unwrap_or(ours);
    ours.eq_ignore_ascii_case(theirs)
}

/// The proxy's loop: read until it holds what the last answer asked for
/// (or all there is), peek again.
fn stepwise(data: &[u8]) -> Peek {
    let mut have = 1.min(data.len());
    loop {
        match peek_client_hello(&data[..have]) {
            Peek::NeedMore(n) => {
                assert!(n > have, "asked for {n} holding {have}");
                if have == data.len() {
                    return Peek::NeedMore(n);
                }
                have = n.min(data.len());
            }
            decided => return decided,
        }
    }
}

/// SNI and ALPN as rustls reads them, when it accepts the ClientHello.
fn rustls_view(mut data: &[u8]) -> Option<(Option<String>, Vec<Vec<u8>>)> {
    let mut acceptor = Acceptor::default();
    while !data.is_empty() {
        acceptor.read_tls(&mut data).ok()?;
        if let Some(accepted) = acceptor.accept().ok()? {
            let hello = accepted.client_hello();
            let alpn = hello
                .alpn()
                .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                .unwrap_or_default();
            return Some((hello.server_name().map(str::to_string), alpn));
        }
    }
    None
}
