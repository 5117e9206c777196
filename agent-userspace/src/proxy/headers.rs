//! Header and authority plumbing between the agent and the upstream:
//! authority parsing, hop-by-hop headers, and protocol upgrades.
use http::{HeaderMap, header};
use hyper_util::rt::TokioIo;

pub fn split_authority(authority: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((h, p)) = rest.split_once(']')
    {
        let port = p
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return (h.to_ascii_lowercase(), port);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            (h.to_ascii_lowercase(), p.parse().unwrap_or(default_port))
        }
        _ => (authority.to_ascii_lowercase(), default_port),
    }
}

pub fn authority_for_uri(host: &str, port: u16, tls: bool) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if (tls && port == 443) || (!tls && port == 80) {
        h
    } else {
        format!("{h}:{port}")
    }
}

pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
}

pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // Static names: removing by &str would parse each name on every request.
    static KEEP_ALIVE: header::HeaderName = header::HeaderName::from_static("keep-alive");
    static PROXY_CONNECTION: header::HeaderName =
        header::HeaderName::from_static("proxy-connection");
    if !keep_upgrade {
        // Headers the sender named in Connection are for this hop only (RFC 9110 7.6.1).
        let named: Vec<header::HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| header::HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            h.remove(name);
        }
        h.remove(header::CONNECTION);
        h.remove(header::UPGRADE);
    }
    // `te: trailers` says the sender takes trailers, which Cordon forwards both ways; it is the
    // one TE HTTP/2 allows, and gRPC servers reset a call that lacks it. Any other TE
    // (transfer codings) is for this hop only.
    let trailers = h.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|t| {
            t.split(',')
                .any(|c| c.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    let hop = [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
    ];
    // Most messages carry none of them: one pass over the few names present
    // is cheaper than a hashed removal of each (run twice per request).
    if h.keys().any(|k| hop.contains(&k)) {
        for name in hop {
            h.remove(name);
        }
    }
    if trailers {
        h.insert(header::TE, header::HeaderValue::from_static("trailers"));
    }
}

/// After a 101, the connection is no longer HTTP: bytes are spliced.
/// (Spawned by the caller as a live connection the kill switch can cut.)
pub async fn splice_upgrade(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
) {
    let (Ok(c), Ok(u)) = tokio::join!(client, upstream) else {
        return;
    };
    let mut c = TokioIo::new(c);
    let mut u = TokioIo::new(u);
    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
        tracing::debug!("upgraded connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_splits_names_ports_and_ipv6() {
        assert_eq!(
            split_authority("API.github.com", 443),
            ("api.github.com".into(), 443)
        );
        assert_eq!(split_authority("x.test:8080", 80), ("x.test".into(), 8080));
        assert_eq!(
            split_authority("[2001:db8::1]:8443", 443),
            ("2001:db8::1".into(), 8443)
        );
        assert_eq!(
            split_authority("[2001:db8::1]", 443),
            ("2001:db8::1".into(), 443)
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_do_not_reach_the_next_hop() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Trace-Hop"),
            ("x-trace-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("te", "gzip"),
            ("x-kept", "yes"),
        ] {
            h.insert(
                header::HeaderName::from_static(k),
                header::HeaderValue::from_static(v),
            );
        }
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn te_trailers_reaches_the_next_hop_without_the_transfer_codings() {
        let mut h = HeaderMap::new();
        h.insert(
            header::TE,
            header::HeaderValue::from_static("gzip, Trailers"),
        );
        strip_hop_by_hop(&mut h, false);
        assert_eq!(
            h.get_all(header::TE).iter().collect::<Vec<_>>(),
            ["trailers"]
        );
    }

    #[test]
    fn default_ports_are_left_out_of_upstream_uris() {
        assert_eq!(authority_for_uri("a.test", 443, true), "a.test");
        assert_eq!(authority_for_uri("a.test", 8443, true), "a.test:8443");
        assert_eq!(authority_for_uri("2001:db8::1", 80, false), "[2001:db8::1]");
    }
}
