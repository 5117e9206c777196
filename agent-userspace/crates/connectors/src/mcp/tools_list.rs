//! Removing tools a policy denies from `tools/list` results, so an agent is never offered a
//! tool it may not call. Works on one parsed JSON-RPC document (a response or a batch of
//! them); the JSON and SSE body filters feed documents through it.

use serde_json::{Value, json};

/// Which responses carry a `tools/list` result.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolsTarget {
    /// Responses with these ids (the `tools/list` requests of the POST being answered).
    Ids(Vec<Value>),
    /// Any response whose result has a `tools` array: for streams where the proxy cannot
    /// know the request ids, such as the older HTTP+SSE transport's GET stream.
    AnyToolsResult,
}

/// The decision callback: `true` keeps the tool.
pub type KeepTool<'a> = dyn FnMut(&str) -> bool + Send + 'a;

/// The action to decide whether a listed tool is offered: `mcp.tool.call {server, tool,
/// arguments: {}}`, as a call with no arguments. A tool whose allow rule tests its arguments
/// (`params.arguments.repo == "sandbox"`) is therefore not offered, since that rule cannot
/// match an empty call; whether it is still callable is decided per call as usual.
pub fn tool_offer_action(connector: Option<&str>, server: &str, tool: &str) -> crate::Action {
    let mut params = serde_json::Map::new();
    params.insert("server".into(), Value::String(server.into()));
    params.insert("tool".into(), Value::String(tool.into()));
    params.insert("arguments".into(), Value::Object(serde_json::Map::new()));
    crate::Action {
        connector: connector.map(String::from),
        name: "mcp.tool.call".into(),
        params,
        enrich: Vec::new(),
    }
}

/// The message of the error that replaces a `tools/list` result Cordon could not filter.
pub const UNFILTERABLE_MESSAGE: &str = "tools/list result withheld: Cordon could not filter it";

impl ToolsTarget {
    /// Whether a response is filtered. A response with a `result.tools` array always is, also
    /// in `Ids` mode: a server answering with an unexpected id must not slip a list through.
    fn wants(&self, response: &serde_json::Map<String, Value>) -> bool {
        let tools = response.get("result").and_then(|r| r.get("tools"));
        match self {
            ToolsTarget::Ids(ids) => {
                tools.is_some_and(Value::is_array)
                    || response.get("id").is_some_and(|id| ids.contains(id))
            }
            ToolsTarget::AnyToolsResult => tools.is_some(),
        }
    }

    /// The id to answer with when a body is not even readable.
    pub(crate) fn first_id(&self) -> Value {
        match self {
            ToolsTarget::Ids(ids) => ids.first().cloned().unwrap_or(Value::Null),
            ToolsTarget::AnyToolsResult => Value::Null,
        }
    }
}

/// A JSON-RPC error replacing a result that could not be filtered.
pub(crate) fn unfilterable(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": UNFILTERABLE_MESSAGE}})
}

/// Whether `doc` holds any response the target selects.
pub(crate) fn targets_any(doc: &Value, target: &ToolsTarget) -> bool {
    let one = |v: &Value| v.as_object().is_some_and(|m| target.wants(m));
    match doc {
        Value::Array(items) => items.iter().any(one),
        v => one(v),
    }
}

/// Filter every targeted response of `doc` in place. Returns whether anything changed;
/// names of removed tools are appended to `removed`.
pub(crate) fn rewrite(
    doc: &mut Value,
    target: &ToolsTarget,
    keep: &mut KeepTool<'_>,
    removed: &mut Vec<String>,
) -> bool {
    match doc {
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= rewrite_one(item, target, keep, removed);
            }
            changed
        }
        one => rewrite_one(one, target, keep, removed),
    }
}

fn rewrite_one(
    msg: &mut Value,
    target: &ToolsTarget,
    keep: &mut KeepTool<'_>,
    removed: &mut Vec<String>,
) -> bool {
    let Value::Object(m) = msg else {
        return false;
    };
    if !target.wants(m) {
        return false;
    }
    let Some(result) = m.get_mut("result") else {
        // An error answer lists no tools.
        return false;
    };
    let tools = match result.get_mut("tools") {
        Some(Value::Array(tools)) => tools,
        _ => {
            let id = m.get("id").cloned().unwrap_or(Value::Null);
            *msg = unfilterable(id);
            return true;
        }
    };
    let before = tools.len();
    tools.retain(|tool| match tool.get("name").and_then(Value::as_str) {
        Some(name) if keep(name) => true,
        Some(name) => {
            removed.push(name.to_string());
            false
        }
        // A tool without a name cannot be judged; it is not offered.
        None => false,
    });
    tools.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut doc: Value, target: ToolsTarget) -> (Value, Vec<String>) {
        let mut removed = Vec::new();
        let mut keep = |name: &str| name != "delete_repository";
        rewrite(&mut doc, &target, &mut keep, &mut removed);
        (doc, removed)
    }

    #[test]
    fn denied_tools_are_removed_from_every_tools_list_answer() {
        let doc = json!([
            {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search_issues"},{"name":"delete_repository"}],"nextCursor":"c"}},
            {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"delete_repository"}]}},
            {"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"tools"}]}}
        ]);
        let (out, removed) = run(doc.clone(), ToolsTarget::Ids(vec![json!(1)]));
        assert_eq!(out[2], doc[2], "other answers are untouched");
        assert_eq!(
            out[0]["result"],
            json!({"tools":[{"name":"search_issues"}],"nextCursor":"c"})
        );
        // A list under another id is filtered too.
        assert_eq!(out[1]["result"]["tools"], json!([]));
        assert_eq!(removed, vec!["delete_repository", "delete_repository"]);
    }

    #[test]
    fn the_offer_action_is_a_tool_call_without_arguments() {
        let a = tool_offer_action(Some("gh-mcp"), "github", "search_issues");
        let call = crate::mcp::parse_request(
            "github",
            Some("gh-mcp"),
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"}}"#,
        )
        .unwrap();
        assert_eq!(a, call.calls[0].action);
    }

    #[test]
    fn shape_matching_filters_any_tools_result_and_drops_nameless_tools() {
        let doc = json!({"jsonrpc":"2.0","id":"z","result":{"tools":[{"name":"a"},{"title":"x"},{"name":"delete_repository"}]}});
        let (out, _) = run(doc, ToolsTarget::AnyToolsResult);
        assert_eq!(out["result"]["tools"], json!([{"name":"a"}]));
    }

    #[test]
    fn a_malformed_tools_result_is_withheld_and_errors_pass() {
        let doc = json!({"jsonrpc":"2.0","id":1,"result":{"tools":"all"}});
        let (out, _) = run(doc, ToolsTarget::Ids(vec![json!(1)]));
        assert_eq!(out["error"]["message"], json!(UNFILTERABLE_MESSAGE));
        assert_eq!(out["id"], json!(1));
        let err = json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}});
        assert_eq!(run(err.clone(), ToolsTarget::Ids(vec![json!(1)])).0, err);
    }
}
