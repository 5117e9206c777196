//! MCP traffic recorded from the official Python SDK (`mcp` 2.3.0 from PyPI: an `MCPServer`
//! with the tools `search_issues` and `delete_repository`, driven by the SDK's own clients)
//! in three transports: Streamable HTTP with 2026-07-28 requests and JSON answers, Streamable
//! HTTP with handshake-era requests and SSE answers, and the older HTTP+SSE transport. Every
//! request must become the expected actions, and every answer must pass the tools/list filter
//! unchanged except for the removed tool.

mod common;

use common::headers;
use cordon_connectors::mcp::{ToolsTarget, tools_filter};
use cordon_connectors::{Completion, ConnectorSet, ProtocolKind, RequestHead, RouteMatch};
use http::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

const CONNECTOR: &str = r#"
name = "demo"
hosts = ["127.0.0.1"]

[[mcp]]
server = "demo"
path = "/mcp"
sse_path = "/sse"
messages_path = "/messages"
"#;

fn set() -> ConnectorSet {
    ConnectorSet::from_sources([(PathBuf::from("demo.toml"), CONNECTOR.to_string())]).unwrap()
}

fn fixture(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mcp_sdk")
        .join(name);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["exchanges"].as_array().unwrap().clone()
}

fn head(set: &ConnectorSet, ex: &Value, extra: &[(&str, &str)]) -> RouteMatch {
    let method = Method::from_bytes(ex["method"].as_str().unwrap().as_bytes()).unwrap();
    let target = ex["target"].as_str().unwrap();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut list: Vec<(&str, &str)> = ex["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    list.extend_from_slice(extra);
    let hs = headers(&list);
    set.match_head(&RequestHead {
        method: &method,
        host: "127.0.0.1",
        port: 18102,
        path,
        query,
        headers: &hs,
    })
}

fn content_type(ex: &Value) -> Option<&str> {
    ex["response_headers"]["content-type"].as_str()
}

/// Run a response through a tools/list filter in chunks of `size` bytes.
fn filtered(ex: &Value, target: ToolsTarget, size: usize) -> String {
    let mut f = tools_filter(
        content_type(ex),
        ex["response_headers"]["content-encoding"].as_str(),
        target,
        Box::new(|name: &str| name != "delete_repository"),
    )
    .unwrap();
    let body = ex["response_body"].as_str().unwrap().as_bytes();
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(&f.push(chunk).unwrap());
    }
    out.extend_from_slice(&f.finish().unwrap());
    String::from_utf8(out).unwrap()
}

/// The tool names of every tools/list answer in a JSON body or SSE stream.
fn listed_tools(text: &str) -> Vec<Vec<String>> {
    let docs: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect(),
    };
    docs.iter()
        .filter_map(|d| d["result"]["tools"].as_array())
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Walk a recording: the action of every request, and the answers to tools/list filtered.
fn walk(name: &str) -> Vec<String> {
    let set = set();
    let mut names = Vec::new();
    for ex in fixture(name) {
        let m = head(&set, &ex, &[]);
        if m.protocol() != ProtocolKind::McpMessages {
            names.push(m.into_action().name);
            continue;
        }
        let body = ex["body"].as_str().unwrap().as_bytes();
        let Completion::Mcp(req) = m.complete_all(body, Some("application/json")).unwrap() else {
            panic!("expected MCP messages")
        };
        names.extend(req.actions().map(|a| a.name.clone()));
        let ids = req.tools_list_ids();
        if ids.is_empty() {
            if content_type(&ex).is_some_and(|c| c.starts_with("text/event-stream")) {
                // Not an answer to tools/list: the stream passes byte for byte.
                let out = filtered(&ex, ToolsTarget::Ids(vec![json!("none")]), 5);
                assert_eq!(out, ex["response_body"].as_str().unwrap());
            }
            continue;
        }
        if ex["status"] == json!(202) {
            continue; // the older transport answers on its GET stream
        }
        assert_eq!(
            listed_tools(ex["response_body"].as_str().unwrap()),
            vec![vec!["search_issues", "delete_repository"]]
        );
        for size in [1, 7, 4096] {
            let out = filtered(&ex, ToolsTarget::Ids(ids.clone()), size);
            assert_eq!(
                listed_tools(&out),
                vec![vec!["search_issues"]],
                "chunks of {size}"
            );
        }
    }
    names
}

#[test]
fn streamable_http_2026_requests_become_actions_and_the_json_list_is_filtered() {
    assert_eq!(
        walk("streamable_http_2026.json"),
        ["mcp.initialize", "mcp.tools.list", "mcp.tool.call"]
    );
}

#[test]
fn streamable_http_with_sse_answers_is_filtered_event_by_event() {
    assert_eq!(
        walk("streamable_http_sse.json"),
        [
            "mcp.initialize",
            "mcp.notifications.initialized",
            "mcp.stream",
            "mcp.tools.list",
            "mcp.tool.call",
            "mcp.session.end"
        ]
    );
}

#[test]
fn the_older_sse_transport_is_filtered_on_its_get_stream() {
    assert_eq!(
        walk("http_sse_legacy.json"),
        [
            "mcp.stream",
            "mcp.initialize",
            "mcp.notifications.initialized",
            "mcp.tools.list",
            "mcp.tool.call"
        ]
    );
    let stream = fixture("http_sse_legacy.json")
        .into_iter()
        .find(|e| e["method"] == json!("GET"))
        .unwrap();
    let original = stream["response_body"].as_str().unwrap();
    let out = filtered(&stream, ToolsTarget::AnyToolsResult, 3);
    assert_eq!(listed_tools(&out), vec![vec!["search_issues"]]);
    // Every other event (the endpoint announcement, the other answers) is untouched.
    let events = |s: &str| -> Vec<String> { s.split("\r\n\r\n").map(String::from).collect() };
    let (before, after) = (events(original), events(&out));
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert_eq!(changed.len(), 1, "only the tools/list answer changes");
    assert!(before[0].starts_with("event: endpoint"));
}

#[test]
fn the_recorded_tool_call_carries_its_arguments_and_client() {
    let set = set();
    let exchanges = fixture("streamable_http_2026.json");
    let call = exchanges
        .iter()
        .find(|e| e["headers"]["mcp-method"] == json!("tools/call"))
        .unwrap();
    let actions = head(&set, call, &[])
        .complete_all(call["body"].as_str().unwrap().as_bytes(), None)
        .unwrap()
        .into_actions();
    assert_eq!(
        (
            actions[0].params["tool"].clone(),
            actions[0].params["arguments"].clone()
        ),
        (json!("search_issues"), json!({"q": "bug"}))
    );
    let discover = &exchanges[0];
    let actions = head(&set, discover, &[])
        .complete_all(discover["body"].as_str().unwrap().as_bytes(), None)
        .unwrap()
        .into_actions();
    assert_eq!(actions[0].params["client_name"], json!("mcp"));
    assert_eq!(actions[0].params["protocol_version"], json!("2026-07-28"));
}

#[test]
fn a_routing_header_naming_another_tool_is_refused() {
    let set = set();
    let call = fixture("streamable_http_2026.json")
        .into_iter()
        .find(|e| e["headers"]["mcp-method"] == json!("tools/call"))
        .unwrap();
    let m = head(&set, &call, &[("mcp-name", "delete_repository")]);
    assert!(
        m.complete_all(call["body"].as_str().unwrap().as_bytes(), None)
            .is_err()
    );
}
