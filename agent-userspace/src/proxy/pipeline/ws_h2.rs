//! WebSocket over HTTP/2 (RFC 8441). An HTTP/2 client opens a WebSocket
//! with an extended CONNECT (`:protocol = websocket`) and no key; upstreams
//! are reached over HTTP/1.1 for upgrades (`upstream.rs`), where a
//! WebSocket is a GET with `Upgrade` and a `Sec-WebSocket-Key` whose
//! accept value the server must echo. These functions translate one into
//! the other (pure); the proxy splices the two streams once both sides
//! switched. For matching and policy the request is the GET it becomes, so
//! a rule reads the same whichever HTTP version the agent spoke.
use base64::{Engine, engine::general_purpose::STANDARD};
use http::{
    Extensions, HeaderMap, HeaderValue, Method, StatusCode, Version, header, request, response,
};
use sha1::{Digest, Sha1};

/// RFC 6455's GUID, appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether a request is an HTTP/2 extended CONNECT for a WebSocket.
pub fn is_websocket_connect(method: &Method, extensions: &Extensions) -> bool {
    method == Method::CONNECT
        && extensions
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// The HTTP/1.1 handshake sent upstream in place of the extended CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H1Handshake {
    key: String,
}

/// Rewrites an extended CONNECT into an HTTP/1.1 WebSocket upgrade with a
/// fresh key (`nonce`: 16 random bytes).
pub fn to_h1(parts: &mut request::Parts, nonce: [u8; 16]) -> H1Handshake {
    let key = STANDARD.encode(nonce);
    parts.method = Method::GET;
    parts.version = Version::HTTP_11;
    parts.extensions.remove::<hyper::ext::Protocol>();
    let h = &mut parts.headers;
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if !h.contains_key(header::SEC_WEBSOCKET_VERSION) {
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_KEY, v);
    }
    H1Handshake { key }
}

impl H1Handshake {
    /// Whether the upstream switched to a WebSocket for this handshake (a
    /// 101 that echoes the key's accept value).
    pub fn accepted(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        let want = accept_value(&self.key);
        status == StatusCode::SWITCHING_PROTOCOLS
            && headers
                .get(header::SEC_WEBSOCKET_ACCEPT)
                .is_some_and(|v| v.as_bytes() == want.as_bytes())
    }
}

/// The answer the HTTP/2 client gets for an accepted handshake: a 200 for
/// its CONNECT, without the HTTP/1.1 upgrade headers.
pub fn client_head(parts: &mut response::Parts) {
    parts.status = StatusCode::OK;
    parts.version = Version::HTTP_2;
    for name in [
        header::UPGRADE,
        header::CONNECTION,
        header::SEC_WEBSOCKET_ACCEPT,
    ] {
        parts.headers.remove(name);
    }
}

fn accept_value(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn connect() -> request::Parts {
        let mut req = http::Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://chat.test/socket")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "chat")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        req.into_parts().0
    }

    #[test]
    fn an_extended_connect_becomes_a_get_upgrade_with_a_fresh_key() {
        let mut p = connect();
        assert!(is_websocket_connect(&p.method, &p.extensions));
        let hs = to_h1(&mut p, [7; 16]);
        assert_eq!(
            (p.method.clone(), p.version),
            (Method::GET, Version::HTTP_11)
        );
        assert!(!is_websocket_connect(&p.method, &p.extensions));
        assert_eq!(p.headers[header::UPGRADE], "websocket");
        assert_eq!(p.headers[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(p.headers[header::SEC_WEBSOCKET_PROTOCOL], "chat");
        assert_eq!(
            p.headers[header::SEC_WEBSOCKET_KEY],
            STANDARD.encode([7u8; 16])
        );
        let mut ok = HeaderMap::new();
        ok.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            accept_value(&STANDARD.encode([7u8; 16])).parse().unwrap(),
        );
        assert!(hs.accepted(StatusCode::SWITCHING_PROTOCOLS, &ok));
        assert!(!hs.accepted(StatusCode::OK, &ok), "no switch, no socket");
        let mut wrong = HeaderMap::new();
        wrong.insert(header::SEC_WEBSOCKET_ACCEPT, "bm9wZQ==".parse().unwrap());
        assert!(!hs.accepted(StatusCode::SWITCHING_PROTOCOLS, &wrong));
    }

    #[test]
    fn a_plain_connect_or_another_protocol_is_not_a_websocket() {
        let mut p = connect();
        p.extensions
            .insert(hyper::ext::Protocol::from_static("connect-udp"));
        assert!(!is_websocket_connect(&p.method, &p.extensions));
        assert!(!is_websocket_connect(&Method::GET, &connect().extensions));
    }
}
