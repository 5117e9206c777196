//! MCP endpoints declared in connector files: checked at load, matched by
//! `ConnectorSet::match_head`, completed per message by `RouteMatch::complete_all`.

mod common;

use common::{headers, shipped};
use cordon_connectors::mcp::{CallDenial, McpError, denial_response};
use cordon_connectors::{
    Completion, ConnectorError, ConnectorSet, Problem, ProtocolError, ProtocolKind, RequestHead,
    RouteMatch,
};
use http::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

fn set(text: &str) -> ConnectorSet {
    ConnectorSet::from_sources([(PathBuf::from("mcp.toml"), text.to_string())]).unwrap()
}

fn load_err(text: &str) -> (usize, Problem) {
    match ConnectorSet::from_sources([(PathBuf::from("mcp.toml"), text.to_string())]) {
        Err(ConnectorError::Invalid { line, problem, .. }) => (line, problem),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn head_match(set: &ConnectorSet, method: Method, url: &str, ct: Option<&str>) -> RouteMatch {
    let uri: http::Uri = url.parse().unwrap();
    let hs = headers(&ct.map(|c| vec![("content-type", c)]).unwrap_or_default());
    set.match_head(&RequestHead {
        method: &method,
        host: uri.host().unwrap(),
        port: uri.port_u16().unwrap_or(443),
        path: uri.path(),
        query: uri.query(),
        headers: &hs,
    })
}

const LEGACY: &str = r#"
name = "tools"
hosts = ["tools.test", "other.test"]

[[mcp]]
server = "internal"
hosts = ["tools.test"]
path = "/mcp"
sse_path = "/sse"
messages_path = "/messages"
"#;

#[test]
fn a_tool_call_to_the_shipped_github_server_is_an_mcp_action() {
    let m = head_match(
        &shipped(),
        Method::POST,
        "https://api.githubcopilot.com/mcp/",
        Some("application/json"),
    );
    assert_eq!(m.protocol(), ProtocolKind::McpMessages);
    assert_eq!(m.mcp_server(), Some("github"));
    assert!(m.body_prefix_needed());
    let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
        "params":{"name":"create_issue","arguments":{"owner":"o","repo":"r","title":"t"}}});
    let Completion::Mcp(req) = m
        .complete_all(body.to_string().as_bytes(), Some("application/json"))
        .unwrap()
    else {
        panic!("expected MCP")
    };
    let a = &req.calls[0].action;
    assert_eq!(a.connector.as_deref(), Some("github-mcp"));
    assert_eq!(a.name, "mcp.tool.call");
    assert_eq!(a.params["arguments"]["repo"], json!("r"));
    assert_eq!(req.calls[0].id, Some(json!(3)));
}

#[test]
fn a_batch_gives_every_action_and_complete_gives_no_tool_name_for_it() {
    let s = set(LEGACY);
    let body = json!([
        {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"}},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repository"}}
    ])
    .to_string();
    let all = head_match(&s, Method::POST, "https://tools.test/mcp", None)
        .complete_all(body.as_bytes(), None)
        .unwrap();
    let tools: Vec<&Value> = all.actions().iter().map(|a| &a.params["tool"]).collect();
    assert_eq!(
        tools,
        [&json!("search_issues"), &json!("delete_repository")]
    );
    // The single-action API cannot name two tools: it says batch, which no tool rule allows.
    let one = head_match(&s, Method::POST, "https://tools.test/mcp", None)
        .complete(body.as_bytes(), None);
    assert_eq!(one.name, "mcp.batch");
    assert_eq!(one.params["size"], json!(2));
}

#[test]
fn the_older_sse_transport_is_recognised_on_its_paths() {
    let s = set(LEGACY);
    let stream = head_match(&s, Method::GET, "https://tools.test/sse", None);
    assert_eq!(stream.protocol(), ProtocolKind::McpStream);
    assert!(!stream.body_prefix_needed());
    let a = stream.into_action();
    assert_eq!(
        (a.name.as_str(), &a.params["server"]),
        ("mcp.stream", &json!("internal"))
    );
    let post = head_match(
        &s,
        Method::POST,
        "https://tools.test/messages?session_id=abc",
        Some("application/json"),
    );
    assert_eq!(post.protocol(), ProtocolKind::McpMessages);
    // Not on a host the endpoint does not list, nor on another path.
    let elsewhere = head_match(&s, Method::POST, "https://other.test/mcp", None);
    assert_eq!(elsewhere.protocol(), ProtocolKind::Http);
    assert_eq!(elsewhere.action(), "http.request");
}

#[test]
fn malformed_or_oversized_bodies_are_protocol_errors() {
    let s = set(LEGACY);
    let m = || head_match(&s, Method::POST, "https://tools.test/mcp", None);
    assert!(matches!(
        m().complete_all(b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", None),
        Err(ProtocolError::Mcp(McpError::Invalid { index: 0, .. }))
    ));
    let limit = m().body_limit();
    let big = vec![b' '; limit];
    assert!(matches!(
        m().complete_all(&big, None),
        Err(ProtocolError::Mcp(McpError::TooLarge { .. }))
    ));
    assert_eq!(m().complete(b"nope", None).name, "mcp.invalid");
}

#[test]
fn a_denial_answers_the_batch_in_json_rpc() {
    let s = set(LEGACY);
    let body = json!([
        {"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"search_issues"}},
        {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"delete_repository"}}
    ])
    .to_string();
    let Completion::Mcp(req) = head_match(&s, Method::POST, "https://tools.test/mcp", None)
        .complete_all(body.as_bytes(), None)
        .unwrap()
    else {
        panic!()
    };
    let d = denial_response(
        &req,
        &[CallDenial {
            index: 1,
            reason: "agents may not delete repositories".into(),
        }],
    );
    let v: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(v[1]["id"], json!("b"));
    assert_eq!(
        v[1]["error"]["message"],
        json!("denied by policy: agents may not delete repositories")
    );
    assert_eq!(v[0]["id"], json!("a"));
}

#[test]
fn mcp_entries_are_checked_at_load_naming_the_line() {
    let base = "name = \"tools\"\nhosts = [\"tools.test\"]\n\n[[mcp]]\n";
    let (line, p) = load_err(&format!("{base}server = \"Bad Name\"\npath = \"/mcp\"\n"));
    assert_eq!(line, 5);
    assert!(matches!(p, Problem::Mcp { .. }), "{p:?}");
    let (line, p) = load_err(&format!("{base}server = \"s\"\npath = \"mcp\"\n"));
    assert_eq!(line, 6);
    assert!(matches!(p, Problem::Mcp { .. }), "{p:?}");
    let (line, p) = load_err(&format!(
        "{base}server = \"s\"\npath = \"/mcp\"\nhosts = [\"elsewhere.test\"]\n"
    ));
    assert_eq!(line, 7);
    assert!(
        matches!(p, Problem::RouteHostNotInConnector { .. }),
        "{p:?}"
    );
    let (_, p) = load_err(&format!(
        "{base}server = \"s\"\npath = \"/mcp\"\nextra = 1\n"
    ));
    assert!(matches!(p, Problem::Syntax(_)), "{p:?}");
    let (line, p) = load_err(&format!(
        "{base}server = \"s\"\npath = \"/a\"\n\n[[mcp]]\nserver = \"s\"\npath = \"/b\"\n"
    ));
    assert_eq!(line, 9);
    assert!(matches!(p, Problem::Mcp { .. }), "{p:?}");
}
