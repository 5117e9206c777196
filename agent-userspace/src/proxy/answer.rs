//! Answers Cordon gives an agent itself: a refusal it can read, in one
//! JSON shape whichever stage refused, with the record's id.
use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use super::body::ProxyBody;
use crate::request::{Ask, Refusal, record::record_refusal};

use super::env::Env;

/// Records the refusal if it is not in the trail yet, then answers it.
pub async fn refuse(env: &Env, ask: &Ask<'_>, refusal: Refusal) -> Response<ProxyBody> {
    let refusal = record(env, ask, refusal).await;
    response(&refusal, ask.action, ask.params)
}

/// Records the refusal if it is not in the trail yet, for a caller that
/// answers it itself (in the request's protocol, with other refusals).
pub async fn record(env: &Env, ask: &Ask<'_>, refusal: Refusal) -> Refusal {
    record_refusal(&env.audit, ask, None, refusal).await
}

/// `deny` or `error` (see `decision_header`), for answers built elsewhere.
pub fn decision_value(refusal: &Refusal) -> http::HeaderValue {
    http::HeaderValue::from_static(decision_header(refusal))
}

fn body(refusal: &Refusal, action: &str, params: &Map<String, Value>) -> String {
    json!({
        "error": refusal.kind().error(),
        "action": action,
        "params": params,
        "rule": refusal.decision().rule_id,
        "reason": refusal.reason(),
        "audit_id": refusal.audit_id(),
    })
    .to_string()
}

/// `deny` for a refusal by policy, `error` for anything else.
fn decision_header(refusal: &Refusal) -> &'static str {
    if refusal.status() == http::StatusCode::FORBIDDEN {
        "deny"
    } else {
        "error"
    }
}

pub fn response(
    refusal: &Refusal,
    action: &str,
    params: &Map<String, Value>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body(refusal, action, params)))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = refusal.status();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-cordon-decision",
        http::HeaderValue::from_static(decision_header(refusal)),
    );
    resp
}

/// The same answer as raw HTTP/1.1 bytes, for a connection hyper has let
/// go of (a head the framing gate refused); it closes the connection.
pub fn http1_bytes(refusal: &Refusal, action: &str, params: &Map<String, Value>) -> Vec<u8> {
    let body = body(refusal, action, params);
    let status = refusal.status();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-cordon-decision: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        decision_header(refusal),
        body.len(),
    )
    .into_bytes()
}
