//! What an upstream saw: one entry per HTTP request, kept for the test to inspect.

use std::net::SocketAddr;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// SNI the client sent (TLS only).
    pub sni: Option<String>,
    /// Negotiated ALPN protocol (TLS only), e.g. `h2`.
    pub alpn: Option<String>,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub conn: ConnInfo,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub version: String,
    pub method: String,
    /// `Host` header, or the URI authority (HTTP/2 `:authority`) when there is none.
    pub host: Option<String>,
    /// Path and query, e.g. `/repos/o/r/pulls/1?x=1`.
    pub path: String,
    /// Header names lower-cased, in arrival order; values decoded lossily.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
