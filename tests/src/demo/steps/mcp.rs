//! Chapter 11: an agent's MCP tool calls are actions. A real MCP server (the official Python
//! SDK) serves four tools; the SDK's own client runs as the agent. Its tool list arrives
//! without the tool its policy denies; an allowed call runs; a denied call is answered inside
//! the protocol (a JSON-RPC error "denied by policy: …"), so the agent reports the reason and
//! carries on, and the server never sees the call.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use serde_json::Value;

use crate::demo::agent::AGENT_TIMEOUT;
use crate::demo::ctx::Ctx;
use crate::py_upstream::{PyServer, proto_python, script};

const HOST: &str = "tools.mcp.test";
const URL: &str = "https://tools.mcp.test/mcp";

const CONNECTOR: &str = r#"# An MCP server is declared like any connector: its JSON-RPC messages become mcp.* actions.
name = "demo-tools"
hosts = ["tools.mcp.test"]

[[mcp]]
server = "tools"
path = "/mcp"
"#;

const POLICY: &str = r#"# Uses the tools MCP server, but never deletes a repository.
agents = ["assistant"]
default = "deny"

[[rule]]
id = "mcp-tools"
action = "mcp.*"
when = 'params.server == "tools"'
decision = "allow"

[[rule]]
id = "no-repo-delete"
action = "mcp.tool.call"
when = 'params.tool == "delete_repository"'
decision = "deny"
reason = "agents never delete repositories"

[[rule]]
id = "dns-tools"
action = "dns.query"
hosts = ["tools.mcp.test"]
decision = "allow"
"#;

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "11. MCP tool calls",
        "A Model Context Protocol server (built with the official Python SDK) runs on the fake \
         internet with four tools. Each JSON-RPC message the agent sends is an action such as \
         mcp.tool.call {server, tool, arguments}, decided like any other.",
    );
    let ip = c.w.ns.v4_at(3);
    c.w.dns.set(HOST, &[IpAddr::V4(ip)]);
    let server = PyServer::start(
        &c.w.ns,
        &c.w.ca,
        &[HOST],
        SocketAddr::new(IpAddr::V4(ip), 443),
        "mcp_server.py",
        &[],
    )
    .context("start the MCP server")?;
    c.w.policies
        .write("connectors/demo-tools.toml", CONNECTOR)?;
    c.w.policies.write("assistant.toml", POLICY)?;
    c.n.say("$POLICIES/connectors/demo-tools.toml:");
    c.n.block(CONNECTOR);
    c.n.say("$POLICIES/assistant.toml:");
    c.n.block(POLICY);
    let reload = c.cordon(&["policy", "reload"])?;
    c.n.check(
        "policy reloaded with the MCP connector",
        reload.status.success(),
        "",
    );

    let python = proto_python()?;
    let client = script("mcp_agent.py");
    let dir = client
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    c.n.alias(&python.display().to_string(), "python");
    c.n.alias(&format!("{dir}/"), "");
    let mut cmd = c.w.daemon.agent(
        "assistant",
        &[
            python.to_str().unwrap_or_default(),
            client.to_str().unwrap_or_default(),
            URL,
            "list",
            r#"call:search_issues:{"q":"flaky"}"#,
            r#"call:delete_repository:{"owner":"acme","repo":"app"}"#,
        ],
    );
    let out = c.run_shown(&mut cmd, AGENT_TIMEOUT)?;
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let step = |i: usize| lines.get(i).cloned().unwrap_or(Value::Null);
    let tools: Vec<String> = step(0)["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    c.n.shows(
        "the agent asked for the tool list: delete_repository is not in it. Cordon removed it \
         from the server's answer because the agent's policy denies calling it.",
    );
    c.n.check(
        "tools/list does not offer the denied tool",
        out.status.success()
            && tools.iter().any(|t| t == "search_issues")
            && !tools.iter().any(|t| t == "delete_repository"),
        &format!("offered: {tools:?}"),
    );
    c.n.check(
        "an allowed tool call runs",
        step(1)["result"]
            .as_str()
            .is_some_and(|r| r.contains("flaky")),
        &step(1).to_string(),
    );
    let denied = step(2)["error"].as_str().unwrap_or_default().to_owned();
    let reached = server
        .lines("calls.log")
        .iter()
        .any(|l| l.starts_with("delete_repository"));
    c.n.shows(
        "the denied call came back as a JSON-RPC error with the call's id and the policy's \
         reason: the SDK raised it like any tool error, the agent printed it and went on. \
         The MCP server never saw the call.",
    );
    c.n.check(
        "a denied call is answered in the protocol with the reason",
        denied.contains("denied by policy: agents never delete repositories") && !reached,
        &format!("error: {denied:?}, server saw it: {reached}"),
    );
    let trail = crate::read_trail(c.w.daemon.state_dir())?.of_chain("assistant");
    let recorded = trail
        .matching(
            "mcp.tool.call",
            &[("tool", serde_json::json!("delete_repository"))],
        )
        .iter()
        .any(|r| crate::trail::verdict(r) == "deny" && crate::trail::rule(r) == "no-repo-delete");
    c.n.check(
        "the trail names the tool, its arguments and the rule",
        recorded,
        "mcp.tool.call {server: tools, tool: delete_repository, arguments: {owner, repo}}",
    );
    drop(server);
    Ok(())
}
