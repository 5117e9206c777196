//! The response filter over a real policy and connector file, fed the
//! bytes an upstream would send.
use std::sync::Arc;

use cordon_connectors::ConnectorSet;
use cordon_policy::PolicySet;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::*;

const CONNECTOR: &str = r#"
name = "tools"
hosts = ["mcp.test"]
[[mcp]]
server = "tools"
path = "/mcp"
"#;

const POLICY: &str = r#"
agents = ["bot"]
default = "allow"

[[rule]]
id = "no-delete"
action = "mcp.tool.call"
when = 'params.tool == "delete_repository"'
decision = "deny"
reason = "never delete"

[[rule]]
id = "sandbox-only"
action = "mcp.tool.call"
when = 'params.tool == "write_file" && params.arguments.repo != "sandbox"'
decision = "deny"
"#;

fn pinned(policy: Option<&str>) -> Pinned {
    let connectors =
        ConnectorSet::from_sources(vec![("tools.toml".into(), CONNECTOR.to_string())]).unwrap();
    let policy = policy.map(|text| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bot.toml"), text).unwrap();
        Arc::new(PolicySet::load_dir(dir.path()).unwrap())
    });
    Pinned::new(policy, Arc::new(connectors))
}

fn offer(policy: Option<&str>) -> Offer {
    Offer {
        pinned: pinned(policy),
        chain: vec!["bot".into()],
        connector: Some("tools".into()),
        server: "tools".into(),
        method: "POST".into(),
        host: "mcp.test".into(),
        path: "/mcp".into(),
    }
}

fn upstream(ctype: &str, encoding: Option<&str>, chunks: Vec<&'static str>) -> Response<ProxyBody> {
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from_static(c.as_bytes()))));
    let body = StreamBody::new(futures::stream::iter(frames)).boxed();
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONTENT_LENGTH, "999");
    if let Some(e) = encoding {
        b = b.header(header::CONTENT_ENCODING, e);
    }
    b.body(body).unwrap()
}

async fn text(resp: Response<ProxyBody>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search_issues"},{"name":"delete_repository"},{"name":"write_file"}]}}"#;

#[test]
fn a_tool_is_offered_unless_the_policy_denies_its_call_without_arguments() {
    let o = offer(Some(POLICY));
    assert!(o.keeps("search_issues"));
    assert!(!o.keeps("delete_repository"));
    // Denied for every repository but "sandbox": an empty call is denied.
    assert!(!o.keeps("write_file"));
    // No policy loaded: everything is denied, so nothing is offered.
    assert!(!offer(None).keeps("search_issues"));
}

#[test]
fn a_learning_agent_is_offered_the_tools_its_policy_would_deny() {
    let learning = POLICY.replace(
        "default = \"allow\"",
        "default = \"allow\"\nmode = \"learn\"",
    );
    let o = offer(Some(&learning));
    assert!(o.keeps("delete_repository"));
    assert!(o.keeps("write_file"));
}

#[tokio::test]
async fn a_json_answer_loses_the_denied_tools_and_its_stale_length() {
    let resp = upstream("application/json", None, vec![&LIST[..40], &LIST[40..]]);
    let out = filtered(
        resp,
        ToolsTarget::Ids(vec![json!(1)]),
        offer(Some(POLICY)),
        7,
    )
    .unwrap();
    assert!(out.headers().get(header::CONTENT_LENGTH).is_none());
    let v: Value = serde_json::from_str(&text(out).await).unwrap();
    assert_eq!(v["result"]["tools"], json!([{"name": "search_issues"}]));
}

#[tokio::test]
async fn an_sse_stream_passes_other_events_and_filters_the_list() {
    let resp = upstream(
        "text/event-stream",
        None,
        vec![
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
            "event: message\ndata: ",
            LIST,
            "\n\n",
        ],
    );
    let out = filtered(resp, ToolsTarget::AnyToolsResult, offer(Some(POLICY)), 7).unwrap();
    let body = text(out).await;
    assert!(
        body.starts_with(
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
        ),
        "{body}"
    );
    assert!(body.contains("search_issues"), "{body}");
    assert!(!body.contains("delete_repository"), "{body}");
    assert!(!body.contains("write_file"), "{body}");
}

#[test]
fn a_compressed_answer_cannot_be_filtered() {
    let resp = upstream("application/json", Some("gzip"), vec![LIST]);
    assert!(matches!(
        filtered(
            resp,
            ToolsTarget::Ids(vec![json!(1)]),
            offer(Some(POLICY)),
            7
        ),
        Err(FilterError::Encoded(_))
    ));
}

fn headers(ctype: &str, cordon: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, ctype.parse().unwrap());
    if cordon {
        h.insert("x-cordon-decision", "error".parse().unwrap());
    }
    h
}

fn post(body: &str) -> Completion {
    Completion::Mcp(mcp::parse_request("tools", Some("tools"), body.as_bytes()).unwrap())
}

#[test]
fn lists_are_looked_for_where_they_can_be_and_plain_call_answers_pass_unheld() {
    let list = post(r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#);
    let call = post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}"#);
    let json = headers("application/json", false);
    let sse = headers("text/event-stream", false);
    assert_eq!(
        target(&list, ProtocolKind::McpMessages, &json),
        Some(ToolsTarget::Ids(vec![json!("l")]))
    );
    // A call's JSON answer is not held; its SSE answer is watched for a smuggled list.
    assert_eq!(target(&call, ProtocolKind::McpMessages, &json), None);
    assert_eq!(
        target(&call, ProtocolKind::McpMessages, &sse),
        Some(ToolsTarget::Ids(vec![]))
    );
    let stream = Completion::Http(mcp::tool_offer_action(None, "tools", "x"));
    assert_eq!(
        target(&stream, ProtocolKind::McpStream, &sse),
        Some(ToolsTarget::AnyToolsResult)
    );
    // Cordon's own refusal is not the server's answer.
    assert_eq!(
        target(
            &list,
            ProtocolKind::McpMessages,
            &headers("application/json", true)
        ),
        None
    );
    assert_eq!(target(&list, ProtocolKind::Http, &json), None);
}
