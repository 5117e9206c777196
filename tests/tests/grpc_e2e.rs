//! gRPC through Cordon, end to end, with grpcio (from PyPI) on both sides over TLS and HTTP/2:
//! a unary call (with its trailing metadata) and a server-streaming call pass through, each
//! message as it is sent; every call is decided as `grpc.call {host, port, service, method}`, so
//! a method the policy denies fails at the client and never reaches the server.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cordon_e2e::py_upstream::{PyServer, proto_python, script};
use cordon_e2e::secrets::{assert_no_leak, random_alnum};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{all_output, show, stdout, world_writable_dir};
use cordon_e2e::{World, require_root_or_skip, run_checked};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "echo"
action = "grpc.call"
when = 'params.service == "cordon.e2e.Echo"'
decision = "allow"

[[rule]]
id = "no-drop"
action = "grpc.call"
when = 'params.method == "Drop"'
decision = "deny"
reason = "Drop is not for agents"
"#;

const HOST: &str = "grpc.test";
const AGENT: &str = "rpc";

/// The gRPC server on `grpc.test`, and its stubs (generated once by grpcio-tools where the
/// agent can read them).
struct Rpc {
    stubs: tempfile::TempDir,
    python: std::path::PathBuf,
    server: PyServer,
}

fn serve(w: &World) -> Rpc {
    let ip = IpAddr::V4(w.ns.v4_at(2));
    w.dns.set(HOST, &[ip]);
    let stubs = world_writable_dir().unwrap();
    let python = proto_python().unwrap();
    run_checked(
        std::process::Command::new(&python)
            .arg(script("grpc_stubs.py"))
            .arg(stubs.path()),
        Duration::from_secs(60),
    )
    .unwrap();
    let server = PyServer::start(
        &w.ns,
        &w.ca,
        &[HOST],
        SocketAddr::new(ip, 443),
        "grpc_server.py",
        &[stubs.path().to_str().unwrap()],
    )
    .unwrap();
    Rpc {
        stubs,
        python,
        server,
    }
}

/// The client script as agent `rpc`: Say, Count and Drop, one JSON value each.
fn calls(w: &World, rpc: &Rpc) -> (std::process::Output, Vec<Value>) {
    let client = script("grpc_agent.py");
    let mut cmd = w.agent(
        AGENT,
        &[
            rpc.python.to_str().unwrap(),
            client.to_str().unwrap(),
            "grpc.test:443",
            rpc.stubs.path().to_str().unwrap(),
        ],
    );
    // getaddrinfo, like every other client here, rather than c-ares' own resolver.
    cmd.env("GRPC_DNS_RESOLVER", "native");
    let out = cordon_e2e::run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(
        out.status.success(),
        "{}\nserver:\n{}",
        show(&out),
        rpc.server.log()
    );
    let got = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, got)
}

#[test]
fn unary_and_streaming_calls_pass_and_are_decided_by_service_and_method() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let rpc = serve(&w);
    let (out, got) = calls(&w, &rpc);
    let server = &rpc.server;
    assert_eq!(got.len(), 3, "{}", show(&out));
    assert_eq!(got[0]["text"], "echo: hello", "{}", show(&out));
    assert_eq!(got[0]["trailers"]["x-echo"], "trailer", "trailers lost");
    let messages = got[1]["messages"].as_array().unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m[0].as_str().unwrap()).collect();
    assert_eq!(texts, ["1", "2", "3"], "{}", show(&out));
    let at = |i: usize| messages[i][1].as_f64().unwrap();
    assert!(
        at(0) + 0.5 < at(2),
        "the stream was buffered: messages arrived at {:?}",
        messages
    );
    assert_eq!(
        (got[2]["ok"].clone(), got[2]["code"].as_str()),
        (json!(false), Some("PERMISSION_DENIED")),
        "{}",
        show(&out)
    );
    assert_eq!(server.lines("calls.log"), vec!["Say hello", "Count 3"]);

    let t = w.trail().unwrap().of_chain(AGENT);
    let call = |method: &str| {
        t.matching(
            "grpc.call",
            &[
                ("host", json!(HOST)),
                ("port", json!(443)),
                ("service", json!("cordon.e2e.Echo")),
                ("method", json!(method)),
            ],
        )
    };
    for method in ["Say", "Count"] {
        let recs = call(method);
        assert_eq!(recs.len(), 1, "{method}:\n{t}");
        assert_eq!((verdict(recs[0]), rule(recs[0])), ("allow", "echo"), "{t}");
    }
    let drop = call("Drop");
    assert_eq!(drop.len(), 1, "{t}");
    assert_eq!(
        (verdict(drop[0]), rule(drop[0])),
        ("deny", "no-drop"),
        "{t}"
    );
}

/// A connector for `grpc.test` whose bearer credential the policy binds.
const RPC_CONNECTOR: &str = r#"
name = "rpc"
hosts = ["grpc.test"]

[credential]
scheme = "bearer"
placeholder_env = ["RPC_TOKEN"]
"#;

#[test]
fn a_call_carrying_an_injected_credential_keeps_its_trailers_scrubbed_of_it() {
    require_root_or_skip!();
    let token = format!("rt_{}", random_alnum(36));
    let w = World::start(POLICY).unwrap();
    w.policies
        .write("connectors/rpc.toml", RPC_CONNECTOR)
        .unwrap();
    w.bind_credentials(POLICY, &[("rpc", &token)]).unwrap();
    let rpc = serve(&w);
    // `cordon run` gives the agent its placeholder in RPC_TOKEN, which the script sends.
    let (out, got) = calls(&w, &rpc);
    assert_eq!(got.len(), 3, "{}", show(&out));
    assert_eq!(got[0]["text"], "echo: hello", "{}", show(&out));
    // gRPC's status and metadata travel in trailers: they arrive, scrubbed of the token the
    // server handed back in them.
    assert_eq!(got[0]["trailers"]["x-echo"], "trailer", "trailers lost");
    assert_eq!(
        got[0]["trailers"]["x-auth"],
        "Bearer [REDACTED]",
        "{}",
        show(&out)
    );
    assert_eq!(got[1]["messages"].as_array().map(Vec::len), Some(3));
    assert_no_leak("what the agent saw", &all_output(&out), &[&token]);
}
