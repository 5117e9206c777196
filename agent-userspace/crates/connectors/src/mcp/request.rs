//! A POSTed MCP body (one JSON-RPC message or a batch) read into one action per message.

use super::McpError;
use super::names::action_for;
use super::strict_json;
use crate::action::Action;
use serde_json::{Map, Value};

/// Most messages accepted in one batch; a longer batch is refused, never judged in part.
pub const MAX_BATCH: usize = 256;

/// What a JSON-RPC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Has a method and an id: the server answers it.
    Request,
    /// Has a method and no id: nobody answers it.
    Notification,
    /// A client's answer to a request the server made (sampling, elicitation, roots).
    Response,
}

/// One message of the body and the action policy decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCall {
    pub kind: MessageKind,
    /// The JSON-RPC id of a request, exactly as sent (string or integer); `None` for
    /// notifications and for responses, which are never answered.
    pub id: Option<Value>,
    /// The JSON-RPC method (`tools/call`), `None` for responses.
    pub method: Option<String>,
    pub action: Action,
}

/// A parsed MCP POST body.
#[derive(Debug, Clone, PartialEq)]
pub struct McpRequest {
    /// The configured name of the endpoint (`server` in the connector file).
    pub server: String,
    /// Whether the body was a JSON array; the answer must then be an array too.
    pub batch: bool,
    pub calls: Vec<McpCall>,
}

impl McpRequest {
    /// Ids of the `tools/list` requests of this body: their results are filtered.
    pub fn tools_list_ids(&self) -> Vec<Value> {
        self.calls
            .iter()
            .filter(|c| c.method.as_deref() == Some("tools/list"))
            .filter_map(|c| c.id.clone())
            .collect()
    }

    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.calls.iter().map(|c| &c.action)
    }
}

/// Parse a complete body. `connector` names the connector that declared the endpoint.
pub fn parse_request(
    server: &str,
    connector: Option<&str>,
    body: &[u8],
) -> Result<McpRequest, McpError> {
    let doc = strict_json::parse(body).map_err(|e| McpError::NotJson(e.to_string()))?;
    let (batch, messages) = match doc {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(McpError::EmptyBatch);
            }
            if items.len() > MAX_BATCH {
                return Err(McpError::BatchTooLarge(items.len()));
            }
            (true, items)
        }
        single => (false, vec![single]),
    };
    let mut calls = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let call = message_call(server, connector, message)
            .map_err(|reason| McpError::Invalid { index, reason })?;
        calls.push(call);
    }
    let ids: Vec<&Value> = calls.iter().filter_map(|c| c.id.as_ref()).collect();
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        // Answers are matched to requests by id; two requests with one id would make a
        // denial of one indistinguishable from the other.
        return Err(McpError::DuplicateId);
    }
    Ok(McpRequest {
        server: server.to_string(),
        batch,
        calls,
    })
}

/// What is wrong with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("not a JSON object")]
    NotObject,
    #[error("`jsonrpc` is not \"2.0\"")]
    Version,
    #[error("`method` is not a string")]
    Method,
    #[error("`id` is not a string or an integer")]
    Id,
    #[error("neither a request, a notification nor a response")]
    Shape,
    #[error("`params` is not an object")]
    Params,
    #[error("`params.name` (the tool or prompt) is missing or not a string")]
    Name,
    #[error("`params.uri` is missing or not a string")]
    Uri,
    #[error("`params.arguments` is not an object")]
    Arguments,
}

fn message_call(
    server: &str,
    connector: Option<&str>,
    message: Value,
) -> Result<McpCall, InvalidMessage> {
    let Value::Object(mut m) = message else {
        return Err(InvalidMessage::NotObject);
    };
    if m.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(InvalidMessage::Version);
    }
    let id = match m.remove("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Some(_) => return Err(InvalidMessage::Id),
    };
    let base = |name: String, params: Map<String, Value>| Action {
        connector: connector.map(String::from),
        name,
        params,
        enrich: Vec::new(),
    };
    let Some(method) = m.remove("method") else {
        if id.is_some() && (m.contains_key("result") || m.contains_key("error")) {
            let mut params = Map::new();
            params.insert("server".into(), Value::String(server.into()));
            return Ok(McpCall {
                kind: MessageKind::Response,
                id: None,
                method: None,
                action: base("mcp.response".into(), params),
            });
        }
        return Err(InvalidMessage::Shape);
    };
    let Value::String(method) = method else {
        return Err(InvalidMessage::Method);
    };
    let params = match m.remove("params") {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(InvalidMessage::Params),
    };
    let (name, params) = action_for(server, &method, params)?;
    Ok(McpCall {
        kind: if id.is_some() {
            MessageKind::Request
        } else {
            MessageKind::Notification
        },
        id,
        method: Some(method),
        action: base(name, params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<McpRequest, McpError> {
        parse_request("gh", Some("github-mcp"), body.to_string().as_bytes())
    }

    #[test]
    fn a_tool_call_keeps_its_id_and_names_the_tool() {
        let r = parse(json!({"jsonrpc":"2.0","id":7,"method":"tools/call",
            "params":{"name":"search_issues","arguments":{"q":"bug","limit":5}}}))
        .unwrap();
        assert!(!r.batch);
        let c = &r.calls[0];
        assert_eq!(c.kind, MessageKind::Request);
        assert_eq!(c.id, Some(json!(7)));
        assert_eq!(c.action.name, "mcp.tool.call");
        assert_eq!(c.action.connector.as_deref(), Some("github-mcp"));
        assert_eq!(
            Value::Object(c.action.params.clone()),
            json!({"server":"gh","tool":"search_issues","arguments":{"q":"bug","limit":5}})
        );
    }

    #[test]
    fn a_batch_gives_one_call_per_message_in_order() {
        let r = parse(json!([
            {"jsonrpc":"2.0","id":"a","method":"tools/list"},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":"b","method":"resources/read","params":{"uri":"file:///x"}},
            {"jsonrpc":"2.0","id":3,"result":{}}
        ]))
        .unwrap();
        assert!(r.batch);
        let names: Vec<&str> = r.actions().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "mcp.tools.list",
                "mcp.notifications.initialized",
                "mcp.resource.read",
                "mcp.response"
            ]
        );
        assert_eq!(r.calls[1].kind, MessageKind::Notification);
        assert_eq!(r.calls[3].kind, MessageKind::Response);
        assert_eq!(r.tools_list_ids(), vec![json!("a")]);
    }

    #[test]
    fn malformed_json_rpc_is_a_typed_error() {
        let invalid = |v: Value| match parse(v) {
            Err(McpError::Invalid { reason, .. }) => reason,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(
            invalid(json!({"id":1,"method":"x"})),
            InvalidMessage::Version
        );
        assert_eq!(invalid(json!(["x"])), InvalidMessage::NotObject);
        assert_eq!(
            invalid(json!({"jsonrpc":"2.0","id":1.5,"method":"x"})),
            InvalidMessage::Id
        );
        assert_eq!(
            invalid(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})),
            InvalidMessage::Name
        );
        assert_eq!(
            invalid(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]})),
            InvalidMessage::Params
        );
        assert_eq!(invalid(json!({"jsonrpc":"2.0"})), InvalidMessage::Shape);
        assert!(matches!(parse(json!([])), Err(McpError::EmptyBatch)));
        assert!(matches!(
            parse_request("gh", None, b"{\"jsonrpc\":\"2.0\""),
            Err(McpError::NotJson(_))
        ));
    }

    #[test]
    fn duplicate_ids_and_duplicate_keys_are_refused() {
        assert!(matches!(
            parse(json!([
                {"jsonrpc":"2.0","id":1,"method":"tools/list"},
                {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}
            ])),
            Err(McpError::DuplicateId)
        ));
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete"}}"#;
        assert!(matches!(
            parse_request("gh", None, body),
            Err(McpError::NotJson(_))
        ));
    }
}
