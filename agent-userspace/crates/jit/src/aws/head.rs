//! The parts of a request SigV4 covers, borrowed from the proxy's view.

use http::{HeaderMap, Method};

/// A request as the agent sent it: the path and query exactly as on the
/// wire (still percent-encoded), and `host` as the Host header or HTTP/2
/// `:authority` gave it (with the port if the agent sent one).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    pub fn new(
        method: &'a Method,
        host: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestHead<'a> {
        RequestHead {
            method,
            host,
            path,
            query,
            headers,
        }
    }

    /// Every value of `name` (lower-case), as raw bytes.
    pub(crate) fn values(&self, name: &str) -> Vec<&'a [u8]> {
        let found: Vec<&[u8]> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if found.is_empty() && name == "host" {
            return vec![self.host.as_bytes()];
        }
        found
    }
}
