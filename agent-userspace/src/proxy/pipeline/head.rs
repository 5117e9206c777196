//! Stage 1: the request head as the rest of the path reads it (pure).
use http::{HeaderMap, Method, Uri, header};

use super::super::headers::split_authority;

/// Where a request says it goes, and what it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Lower-cased host from the request target or `Host`/`:authority`;
    /// empty when there is none (refused by the checks).
    pub host: String,
    pub port: u16,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    /// An HTTP/2 extended CONNECT opening a WebSocket (RFC 8441): read as
    /// the GET upgrade it becomes upstream (`ws_h2`).
    pub websocket_h2: bool,
}

impl Head {
    /// `default_port` is the port the agent dialled.
    pub fn read(method: &Method, uri: &Uri, headers: &HeaderMap, default_port: u16) -> Head {
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or_default();
        let (host, port) = split_authority(authority, default_port);
        Head {
            host,
            port,
            method: method.clone(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            websocket_h2: false,
        }
    }

    /// Marks an RFC 8441 WebSocket: matched and decided as a GET.
    pub fn websocket_over_h2(mut self, yes: bool) -> Head {
        if yes {
            self.method = Method::GET;
            self.websocket_h2 = true;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, host: Option<&str>) -> Head {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().unwrap());
        }
        Head::read(&Method::GET, &uri.parse().unwrap(), &h, 443)
    }

    #[test]
    fn the_request_target_authority_wins_over_the_host_header() {
        let h = head("https://API.example.com:8443/a?b=1", Some("other"));
        assert_eq!((h.host.as_str(), h.port), ("api.example.com", 8443));
        assert_eq!((h.path.as_str(), h.query.as_deref()), ("/a", Some("b=1")));
    }

    #[test]
    fn the_host_header_names_the_host_of_an_origin_form_request() {
        let h = head("/x", Some("[::1]:8080"));
        assert_eq!((h.host.as_str(), h.port), ("::1", 8080));
        let h = head("/x", Some("example.com"));
        assert_eq!(h.port, 443, "the dialled port");
    }

    #[test]
    fn an_h2_websocket_connect_reads_as_the_get_it_becomes() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "chat.test".parse().unwrap());
        let uri = "https://chat.test/socket".parse().unwrap();
        let head = Head::read(&Method::CONNECT, &uri, &h, 443).websocket_over_h2(true);
        assert_eq!((head.method, head.websocket_h2), (Method::GET, true));
        let plain = Head::read(&Method::CONNECT, &uri, &h, 443).websocket_over_h2(false);
        assert_eq!(plain.method, Method::CONNECT);
    }

    #[test]
    fn no_host_at_all_reads_as_empty() {
        assert_eq!(head("/x", None).host, "");
    }
}
