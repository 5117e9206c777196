//! The application protocols Cordon speaks on either side of the proxy.

/// ALPN identifier for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN identifier for HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The protocol an agent negotiated with the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    H2,
    Http1,
}

impl Alpn {
    /// Maps a negotiated ALPN value; `None` (no ALPN, or something other
    /// than h2) means the connection speaks HTTP/1.1 - the only protocols
    /// Cordon offers are h2 and http/1.1.
    pub fn from_negotiated(proto: Option<&[u8]>) -> Alpn {
        match proto {
            Some(p) if p == ALPN_H2 => Alpn::H2,
            _ => Alpn::Http1,
        }
    }
}

/// What the proxy offers the upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAlpn {
    /// Offer h2 and http/1.1 (upstream picks).
    H2OrHttp1,
    /// Offer only http/1.1, for agents that negotiated HTTP/1.1 so the proxy
    /// can relay without translating between protocol versions.
    Http1Only,
}

impl UpstreamAlpn {
    /// The upstream offer that suits what the agent negotiated.
    pub fn for_agent(agent: Alpn) -> UpstreamAlpn {
        match agent {
            Alpn::H2 => UpstreamAlpn::H2OrHttp1,
            Alpn::Http1 => UpstreamAlpn::Http1Only,
        }
    }
}
