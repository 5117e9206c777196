//! Answers Cordon gives an agent itself: a denial it can read, and
//! upstream failures in the same shape.
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use super::body::ProxyBody;

pub struct Refusal<'a> {
    pub status: StatusCode,
    pub error: &'a str,
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub rule: &'a str,
    pub reason: &'a str,
    pub audit_id: Option<u64>,
}

impl Refusal<'_> {
    pub fn response(&self) -> Response<ProxyBody> {
        let body = json!({
            "error": self.error,
            "action": self.action,
            "params": self.params,
            "rule": self.rule,
            "reason": self.reason,
            "audit_id": self.audit_id,
        });
        let decision = if self.status == StatusCode::FORBIDDEN {
            "deny"
        } else {
            "error"
        };
        let mut resp = Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        );
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-cordon-decision",
            http::HeaderValue::from_static(decision),
        );
        resp
    }
}
