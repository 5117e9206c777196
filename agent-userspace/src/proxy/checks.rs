//! Checks made on a request before it is read as an action: raw framing
//! problems found by `h1guard` (smuggling, oversized heads) and domain
//! fronting (a Host that disagrees with the TLS name or with the name the
//! agent resolved for the address it dialled).
use http::{HeaderMap, StatusCode, header};

use super::{h1guard::HeadFindings, http::HttpCtx};

/// Header blocks larger than this are refused.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What the raw bytes of the head showed (HTTP/1 only; see `h1guard`).
pub fn raw_problem(raw: HeadFindings) -> Option<(&'static str, String, StatusCode)> {
    if raw.conflicting_framing {
        return Some((
            "request-smuggling",
            "both Content-Length and Transfer-Encoding are set".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    if raw.oversized {
        return Some((
            "header-limit",
            format!("the header block is larger than {MAX_HEADER_BYTES} bytes"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ));
    }
    None
}

/// Checks made before any action is parsed: request smuggling and domain
/// fronting. Returns (rule, reason, status).
pub fn request_problem(
    ctx: &HttpCtx,
    host: &str,
    headers: &HeaderMap,
) -> Option<(&'static str, String, StatusCode)> {
    if host.is_empty() {
        return Some((
            "malformed-request",
            "request has no Host or :authority".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    if headers.contains_key(header::CONTENT_LENGTH)
        && headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Some((
            "request-smuggling",
            "both Content-Length and Transfer-Encoding are set".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    if headers.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return Some((
            "request-smuggling",
            "several Content-Length headers".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    if let Some(sni) = &ctx.sni
        && !sni.eq_ignore_ascii_case(host)
    {
        return Some((
            "domain-fronting",
            format!("Host {host} does not match the TLS server name {sni}"),
            StatusCode::FORBIDDEN,
        ));
    }
    match &ctx.resolved {
        Some(name) if !name.eq_ignore_ascii_case(host) => Some((
            "domain-fronting",
            format!(
                "Host {host} does not match {name}, the name the agent resolved to this address"
            ),
            StatusCode::FORBIDDEN,
        )),
        // Plain HTTP to a name the agent never resolved through Cordon: the
        // Host header would be the agent's word against the address.
        None if !ctx.tls && host.parse::<std::net::IpAddr>().is_err() => Some((
            "domain-fronting",
            format!(
                "Host {host} was not resolved through Cordon to {}",
                ctx.actor.origin.dst.ip()
            ),
            StatusCode::FORBIDDEN,
        )),
        _ => None,
    }
}
