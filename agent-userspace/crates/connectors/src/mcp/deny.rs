//! Refusing an MCP request inside the protocol: a JSON-RPC error with the request's id, so an
//! agent framework reports "denied by policy: <reason>" instead of failing on an HTTP 403.
//!
//! A batch is refused whole: if any member is denied, none is forwarded. Denied members get
//! their own reason; the other requests get [`NOT_RUN_MESSAGE`]. Running the allowed half of
//! a batch would need the proxy to split the request and merge two answers, and a batch's
//! members may depend on each other, so refusing the whole batch is the safe rule.

use super::request::{McpRequest, MessageKind};
use serde_json::{Value, json};

/// The JSON-RPC error code of a policy denial (in the range JSON-RPC leaves to servers).
pub const POLICY_DENIED_CODE: i64 = -32001;

/// The message of batch members refused because another member was denied.
pub const NOT_RUN_MESSAGE: &str = "not run: another call in this batch was denied by policy";

/// The answer to send instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpDenial {
    /// 200 when the body answers requests by id; 403 when the body held only notifications or
    /// responses, which JSON-RPC never answers (the MCP transport then wants an HTTP error,
    /// with an error object that has a null id).
    pub status: http::StatusCode,
    /// `application/json`.
    pub body: Vec<u8>,
}

/// One denied message: its index in [`McpRequest::calls`] and the policy's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDenial {
    pub index: usize,
    pub reason: String,
}

fn error_object(id: Value, message: &str, action: Option<&str>) -> Value {
    let mut error = json!({"code": POLICY_DENIED_CODE, "message": message});
    if let Some(action) = action {
        error["data"] = json!({"action": action});
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// The JSON-RPC answer refusing `request`, whose members listed in `denied` were denied.
pub fn denial_response(request: &McpRequest, denied: &[CallDenial]) -> McpDenial {
    let mut answers = Vec::new();
    for (index, call) in request.calls.iter().enumerate() {
        let (Some(id), MessageKind::Request) = (&call.id, call.kind) else {
            continue;
        };
        let answer = match denied.iter().find(|d| d.index == index) {
            Some(d) => error_object(
                id.clone(),
                &format!("denied by policy: {}", d.reason),
                Some(&call.action.name),
            ),
            None => error_object(id.clone(), NOT_RUN_MESSAGE, None),
        };
        answers.push(answer);
    }
    if answers.is_empty() {
        let reason = denied
            .first()
            .map_or("the request was refused", |d| d.reason.as_str());
        let message = format!("denied by policy: {reason}");
        return McpDenial {
            status: http::StatusCode::FORBIDDEN,
            body: error_object(Value::Null, &message, None)
                .to_string()
                .into_bytes(),
        };
    }
    let body = if request.batch {
        Value::Array(answers)
    } else {
        answers.remove(0)
    };
    McpDenial {
        status: http::StatusCode::OK,
        body: body.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::parse_request;

    fn req(body: Value) -> McpRequest {
        parse_request("gh", None, body.to_string().as_bytes()).unwrap()
    }

    fn deny(index: usize) -> CallDenial {
        CallDenial {
            index,
            reason: "no deletes".into(),
        }
    }

    #[test]
    fn a_single_call_gets_an_error_with_its_own_id() {
        let r = req(
            json!({"jsonrpc":"2.0","id":"x1","method":"tools/call","params":{"name":"delete_repository"}}),
        );
        let d = denial_response(&r, &[deny(0)]);
        assert_eq!(d.status, http::StatusCode::OK);
        let v: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":"x1","error":{"code":POLICY_DENIED_CODE,
                "message":"denied by policy: no deletes","data":{"action":"mcp.tool.call"}}})
        );
    }

    #[test]
    fn a_batch_is_refused_whole_and_notifications_get_no_answer() {
        let r = req(json!([
            {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repository"}}
        ]));
        let d = denial_response(&r, &[deny(2)]);
        let v: Value = serde_json::from_slice(&d.body).unwrap();
        let answers = v.as_array().unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0]["id"], json!(1));
        assert_eq!(answers[0]["error"]["message"], json!(NOT_RUN_MESSAGE));
        assert_eq!(answers[1]["id"], json!(2));
        assert_eq!(
            answers[1]["error"]["message"],
            json!("denied by policy: no deletes")
        );
    }

    #[test]
    fn a_denied_notification_is_an_http_error_with_a_null_id() {
        let r = req(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        let d = denial_response(&r, &[deny(0)]);
        assert_eq!(d.status, http::StatusCode::FORBIDDEN);
        let v: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["message"], json!("denied by policy: no deletes"));
    }
}
