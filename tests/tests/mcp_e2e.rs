//! MCP through Cordon, end to end, with the official Python SDK on both sides: its server runs
//! as an upstream over HTTPS, its client as an agent. Each JSON-RPC message is an action: an
//! allowed tool runs; a denied one is answered in the protocol (a JSON-RPC error with the
//! policy's reason, the agent carries on) and never reaches the server; an approved one is held
//! until a human answers; `tools/list` does not offer the denied tool; a tool's progress
//! streams through as it happens (SSE, unbuffered).

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use cordon_e2e::operator::{Background, wait_for_pending};
use cordon_e2e::py_upstream::{PyServer, proto_python, script};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{show, stdout};
use cordon_e2e::{World, require_root_or_skip};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "mcp"
action = "mcp.*"
decision = "allow"

[[rule]]
id = "no-repo-delete"
action = "mcp.tool.call"
when = 'params.tool == "delete_repository"'
decision = "deny"
reason = "agents never delete repositories"

[[rule]]
id = "merge-needs-a-human"
action = "mcp.tool.call"
when = 'params.tool == "merge_pr"'
decision = "approve"
approval_timeout = "30s"
"#;

/// The MCP server's endpoint, declared like any other connector.
const CONNECTOR: &str = r#"
name = "e2e-tools"
hosts = ["mcp.test"]

[[mcp]]
server = "tools"
path = "/mcp"
"#;

const HOST: &str = "mcp.test";
const URL: &str = "https://mcp.test/mcp";
const AGENT: &str = "assistant";

struct Mcp {
    w: World,
    server: PyServer,
}

fn start() -> Mcp {
    let w = World::start(POLICY).unwrap();
    w.policies
        .write("connectors/e2e-tools.toml", CONNECTOR)
        .unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let ip = IpAddr::V4(w.ns.v4_at(3));
    w.dns.set(HOST, &[ip]);
    let server = PyServer::start(
        &w.ns,
        &w.ca,
        &[HOST],
        SocketAddr::new(ip, 443),
        "mcp_server.py",
        &[],
    )
    .unwrap();
    Mcp { w, server }
}

/// The SDK client as an agent, one step per argument; its JSON lines.
fn agent_command(m: &Mcp, steps: &[&str]) -> Command {
    let python = proto_python().unwrap();
    let client = script("mcp_agent.py");
    let mut argv = vec![python.to_str().unwrap(), client.to_str().unwrap(), URL];
    argv.extend_from_slice(steps);
    m.w.agent(AGENT, &argv)
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", show(out))))
        .collect()
}

#[test]
fn allowed_denied_and_streamed_calls_and_a_filtered_tool_list_through_the_sdk() {
    require_root_or_skip!();
    let m = start();
    let out = cordon_e2e::run_with_timeout(
        &mut agent_command(
            &m,
            &[
                "list",
                r#"call:search_issues:{"q":"flaky"}"#,
                r#"call:delete_repository:{"owner":"o","repo":"r"}"#,
                r#"call:count_slowly:{"n":3}"#,
                r#"call:search_issues:{"q":"after"}"#,
            ],
        ),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "the agent crashed\n{}", show(&out));
    let got = lines(&out);
    assert_eq!(got.len(), 5, "{}", show(&out));

    assert_eq!(
        got[0]["tools"],
        json!(["count_slowly", "merge_pr", "search_issues"]),
        "the denied tool is not offered; the one needing approval is"
    );
    assert_eq!(got[1]["result"], "3 issues match 'flaky'", "{}", show(&out));
    let denied = got[2]["error"].as_str().unwrap_or_default();
    assert!(
        denied.contains("denied by policy: agents never delete repositories"),
        "{}",
        show(&out)
    );
    assert_eq!(got[2]["code"], json!(-32001), "{}", show(&out));
    // Progress arrives while the tool runs (three events 0.6 s apart), not with the answer.
    let progress: Vec<f64> = got[3]["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let answered = got[3]["answered"].as_f64().unwrap();
    assert_eq!(got[3]["result"], "counted to 3", "{}", show(&out));
    assert_eq!(progress.len(), 3, "{}", show(&out));
    assert!(
        progress[0] + 1.0 < answered,
        "progress was held back until the answer: {progress:?}, answered at {answered}"
    );
    assert_eq!(got[4]["result"], "3 issues match 'after'");

    let ran = m.server.lines("calls.log");
    assert_eq!(
        ran,
        vec![
            "search_issues flaky",
            "count_slowly 3",
            "search_issues after"
        ],
        "server log:\n{}",
        m.server.log()
    );

    let t = m.w.trail().unwrap().of_chain(AGENT);
    let on = |tool: &str| {
        t.matching(
            "mcp.tool.call",
            &[("server", json!("tools")), ("tool", json!(tool))],
        )
    };
    let search = on("search_issues");
    assert_eq!(search.len(), 2, "{t}");
    assert_eq!(search[0].params["arguments"], json!({"q": "flaky"}), "{t}");
    assert!(search.iter().all(|r| verdict(r) == "allow"), "{t}");
    let delete = on("delete_repository");
    assert_eq!(delete.len(), 1, "{t}");
    assert_eq!(
        (verdict(delete[0]), rule(delete[0])),
        ("deny", "no-repo-delete"),
        "{t}"
    );
    assert_eq!(
        delete[0].params["arguments"],
        json!({"owner": "o", "repo": "r"})
    );
    assert!(
        t.has("mcp.tools.list", &[("server", json!("tools"))]),
        "{t}"
    );
    assert!(
        t.has("mcp.initialize", &[("server", json!("tools"))]),
        "{t}"
    );
    let log = m.w.daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("tools/list answer filtered") && l.contains("delete_repository")),
        "the removed tool is not logged:\n{log}"
    );
}

#[test]
fn a_tool_call_that_needs_approval_is_held_and_runs_once_approved() {
    require_root_or_skip!();
    let m = start();
    let agent = Background::start(
        agent_command(&m, &[r#"call:merge_pr:{"number":7}"#]),
        Duration::from_secs(60),
    );
    let p = wait_for_pending(&m.w.daemon, "mcp.tool.call", Duration::from_secs(20)).unwrap();
    assert_eq!(p.params["tool"], "merge_pr", "{p:?}");
    assert_eq!(p.params["arguments"], json!({"number": 7}), "{p:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!agent.is_finished(), "the call did not wait for the human");
    assert!(
        m.server.lines("calls.log").is_empty(),
        "ran before approval"
    );

    let ok = m.w.daemon.cordon(&["approve", &p.id]).unwrap();
    assert!(ok.status.success(), "{}", show(&ok));
    let out = agent.join().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let got = lines(&out);
    assert_eq!(got[0]["result"], "merged #7", "{}", show(&out));
    assert_eq!(m.server.lines("calls.log"), vec!["merge_pr 7"]);
    let t = m.w.trail().unwrap().of_chain(AGENT);
    assert!(
        t.records()
            .iter()
            .any(|r| r.kind.as_str() == "approval.granted"
                && r.action.as_deref() == Some("mcp.tool.call")),
        "{t}"
    );
}

/// POSTs one JSON-RPC batch to `argv[1]` and prints the status and the answer.
const BATCH_CLIENT: &str = r#"
import http.client, json, os, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
conn = http.client.HTTPSConnection("mcp.test", 443, context=ctx, timeout=15)
batch = [
    {"jsonrpc": "2.0", "id": "a", "method": "tools/call",
     "params": {"name": "search_issues", "arguments": {"q": "x"}}},
    {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
     "params": {"name": "delete_repository", "arguments": {"owner": "o", "repo": "r"}}},
]
conn.request("POST", "/mcp", body=json.dumps(batch),
              headers={"content-type": "application/json",
                       "accept": "application/json, text/event-stream"})
r = conn.getresponse()
print(json.dumps({"status": r.status, "body": json.loads(r.read())}))
"#;

#[test]
fn a_batch_with_one_denied_call_is_refused_whole_with_an_error_for_each_id() {
    require_root_or_skip!();
    let m = start();
    let out = m.w.python(AGENT, BATCH_CLIENT, &[]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    let answers = v["body"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{v}");
    assert_eq!(answers[0]["id"], "a");
    assert_eq!(
        answers[0]["error"]["message"],
        "not run: another call in this batch was denied by policy"
    );
    assert_eq!(answers[1]["id"], 7);
    assert_eq!(answers[1]["error"]["code"], -32001);
    assert_eq!(
        answers[1]["error"]["message"],
        "denied by policy: agents never delete repositories"
    );
    assert!(m.server.lines("calls.log").is_empty(), "a call ran");
    // The denied call is decided (first) and recorded; the other is never decided.
    let t = m.w.trail().unwrap().of_chain(AGENT);
    let delete = t.one("mcp.tool.call", &[("tool", json!("delete_repository"))]);
    assert_eq!((verdict(delete), rule(delete)), ("deny", "no-repo-delete"));
    assert!(
        !t.has("mcp.tool.call", &[("tool", json!("search_issues"))]),
        "{t}"
    );
}
