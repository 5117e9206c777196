//! Stage 2: checks made before a request is read as an action (pure):
//! a missing host, framing headers HTTP/2 could still carry, and domain
//! fronting (a Host that disagrees with the TLS name or with the name the
//! agent resolved for the address it dialled). HTTP/1 framing was already
//! checked on the bytes by the gate (`h1guard`).
use std::net::IpAddr;

use http::{HeaderMap, header};

use crate::request::{Attribution, Kind, Refusal};

/// What the connection says about where the agent meant to go.
#[derive(Clone, Copy, Debug)]
pub struct ConnFacts<'a> {
    /// The name the TLS ClientHello asked for.
    pub sni: Option<&'a str>,
    /// The name the agent resolved through Cordon to the dialled address.
    pub resolved: Option<&'a str>,
    pub tls: bool,
    pub dst_ip: IpAddr,
}

pub fn check(
    conn: &ConnFacts<'_>,
    host: &str,
    headers: &HeaderMap,
    by: &Attribution,
) -> Result<(), Refusal> {
    let refuse = |kind: Kind, reason: String| Err(Refusal::new(kind, reason, by.clone()));
    if host.is_empty() {
        return refuse(Kind::Malformed, "request has no Host or :authority".into());
    }
    if headers.contains_key(header::CONTENT_LENGTH)
        && headers.contains_key(header::TRANSFER_ENCODING)
    {
        return refuse(
            Kind::Smuggling,
            "both Content-Length and Transfer-Encoding are set".into(),
        );
    }
    if headers.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return refuse(Kind::Smuggling, "several Content-Length headers".into());
    }
    if let Some(sni) = conn.sni
        && !sni.eq_ignore_ascii_case(host)
    {
        return refuse(
            Kind::DomainFronting,
            format!("Host {host} does not match the TLS server name {sni}"),
        );
    }
    match conn.resolved {
        Some(name) if !name.eq_ignore_ascii_case(host) => refuse(
            Kind::DomainFronting,
            format!(
                "Host {host} does not match {name}, the name the agent resolved to this address"
            ),
        ),
        // Plain HTTP to a name the agent never resolved through Cordon: the
        // Host header would be the agent's word against the address.
        None if !conn.tls && host.parse::<IpAddr>().is_err() => refuse(
            Kind::DomainFronting,
            format!(
                "Host {host} was not resolved through Cordon to {}",
                conn.dst_ip
            ),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn by() -> Attribution {
        Attribution::cordon(Arc::from("v1"))
    }

    fn facts<'a>(sni: Option<&'a str>, resolved: Option<&'a str>, tls: bool) -> ConnFacts<'a> {
        ConnFacts {
            sni,
            resolved,
            tls,
            dst_ip: "10.0.0.1".parse().unwrap(),
        }
    }

    fn kind(r: Result<(), Refusal>) -> Option<Kind> {
        r.err().map(|r| r.kind().clone())
    }

    #[test]
    fn a_host_that_disagrees_with_the_tls_name_is_fronting() {
        let c = facts(Some("api.github.com"), None, true);
        let h = HeaderMap::new();
        assert_eq!(
            kind(check(&c, "evil.com", &h, &by())),
            Some(Kind::DomainFronting)
        );
        assert_eq!(kind(check(&c, "API.github.com", &h, &by())), None);
    }

    #[test]
    fn plain_http_must_name_what_the_agent_resolved() {
        let h = HeaderMap::new();
        let resolved = facts(None, Some("a.test"), false);
        assert_eq!(kind(check(&resolved, "a.test", &h, &by())), None);
        assert_eq!(
            kind(check(&resolved, "b.test", &h, &by())),
            Some(Kind::DomainFronting)
        );
        let unresolved = facts(None, None, false);
        assert_eq!(
            kind(check(&unresolved, "b.test", &h, &by())),
            Some(Kind::DomainFronting)
        );
        assert_eq!(
            kind(check(&unresolved, "10.0.0.1", &h, &by())),
            None,
            "an IP literal"
        );
    }

    #[test]
    fn framing_headers_that_could_smuggle_are_refused() {
        let c = facts(None, Some("a.test"), false);
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, "1".parse().unwrap());
        h.append(header::CONTENT_LENGTH, "1".parse().unwrap());
        assert_eq!(kind(check(&c, "a.test", &h, &by())), Some(Kind::Smuggling));
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert_eq!(kind(check(&c, "a.test", &h, &by())), Some(Kind::Smuggling));
    }

    #[test]
    fn a_request_without_a_host_is_malformed() {
        let c = facts(None, None, true);
        assert_eq!(
            kind(check(&c, "", &HeaderMap::new(), &by())),
            Some(Kind::Malformed)
        );
    }
}
