//! A refused MCP POST answered inside the protocol: a JSON-RPC error with
//! each request's id ("denied by policy: <reason>"), so an agent framework
//! reports the reason instead of failing on an HTTP 403. The connectors
//! crate builds the body; this module picks the reasons and the headers.
use bytes::Bytes;
use cordon_connectors::mcp::{CallDenial, McpRequest, denial_response};
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full};

use crate::{
    proxy::{answer, body::ProxyBody},
    request::Refusal,
};

/// One denial per refused call, with the refusal's reason.
pub fn denials(refused: &[(usize, Refusal)]) -> Vec<CallDenial> {
    refused
        .iter()
        .map(|(index, r)| CallDenial {
            index: *index,
            reason: r.reason().to_string(),
        })
        .collect()
}

/// The answer to `request`, none of whose calls is forwarded.
pub fn response(request: &McpRequest, refused: &[(usize, Refusal)]) -> Response<ProxyBody> {
    let denial = denial_response(request, &denials(refused));
    let mut resp = Response::new(
        Full::new(Bytes::from(denial.body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = denial.status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some((_, first)) = refused.first() {
        h.insert("x-cordon-decision", answer::decision_value(first));
        if let Some(id) = first.audit_id() {
            h.insert("x-cordon-audit-id", id.into());
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cordon_connectors::mcp::parse_request;
    use cordon_policy::Source;
    use serde_json::{Value, json};

    use super::*;
    use crate::request::{Attribution, Kind, Recorded};

    fn policy_refusal(reason: &str, id: u64) -> Refusal {
        Refusal::new(
            Kind::Policy {
                rule: Arc::from("no-deletes"),
                source: Source::Rule,
            },
            reason,
            Attribution::cordon(Arc::from("v1")),
        )
        .recorded(Recorded::Yes(id))
    }

    #[test]
    fn a_denied_call_is_answered_with_its_id_and_the_policy_reason() {
        let req = parse_request(
            "gh",
            None,
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}},
                 {"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"delete"}}]"#,
        )
        .unwrap();
        let resp = response(&req, &[(1, policy_refusal("never delete", 42))]);
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(resp.headers()["x-cordon-audit-id"], "42");
        assert_eq!(resp.headers()["x-cordon-decision"], "deny");
        let body = futures::executor::block_on(resp.into_body().collect())
            .unwrap()
            .to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[1]["id"], json!("d"));
        assert_eq!(
            v[1]["error"]["message"],
            json!("denied by policy: never delete")
        );
        assert_eq!(v[0]["id"], json!(1));
        assert_eq!(
            v[0]["error"]["message"],
            json!(cordon_connectors::mcp::NOT_RUN_MESSAGE)
        );
    }
}
