//! Every shipped connector route, through the real proxy: one python agent sends every case of
//! the shipped-route table (shared with the offline matcher's test) with a
//! plain `http.client` over TLS, and the audit record each request produced must name the
//! expected connector and action with exactly the expected params.
//!
//! Each forwarded response carries `x-cordon-audit-id`, the seq of the decision record, so every
//! case is matched to its own record rather than by searching the trail.

#[path = "../../agent-userspace/crates/connectors/tests/route_cases/mod.rs"]
mod cases;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use cases::Case;
use cordon_audit::{AuditRecord, EventKind};
use cordon_e2e::trail::verdict;
use cordon_e2e::world::{show, stdout};
use cordon_e2e::{
    HttpsServer, Method, Recorded, Reply, World, require_root_or_skip, workspace_root,
};
use serde_json::{Value, json};

/// The PR the merge case names, and the base branch the fake GitHub reports
/// for it: through the proxy `github.pr.merge` is enriched with it, which
/// the offline matcher never fetches.
const MERGE_PR_PATH: &str = "/repos/o/r/pulls/12";
const MERGE_BASE: &str = "main";

/// The shared table, with what enrichment adds through the proxy.
fn all_cases() -> Vec<Case> {
    let mut cases = cases::all_cases();
    for c in &mut cases {
        if c.action == "github.pr.merge" && c.url.ends_with("/pulls/12/merge") {
            c.params["base"] = serde_json::json!(MERGE_BASE);
        }
    }
    cases
}

const AGENT: &str = "router";

/// Everything is allowed: this test is about which action a request becomes, not the decision.
const POLICY: &str = r#"
agents = ["*"]
default = "allow"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"
"#;

/// Hosts of the generic (connector-less) cases, served by an extra upstream on a third address.
const GENERIC_NAMES: &[&str] = &[
    "gitlab.example.com",
    "git.example.org",
    "example.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "bedrock-runtime.us-west-2.amazonaws.com",
    "bedrock-runtime.eu-west-1.amazonaws.com",
];

/// Sends every case of `argv[1]` (JSON) in order, one keep-alive connection per host and port,
/// and prints one JSON line per case: its index, status and the audit id of its decision.
const CLIENT: &str = r#"
import http.client, json, os, ssl, sys
from urllib.parse import urlsplit

ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
conns = {}

def send(c, fresh):
    u = urlsplit(c["url"])
    key = (u.hostname, u.port or 443)
    if fresh or key not in conns:
        if key in conns:
            conns[key].close()
        conns[key] = http.client.HTTPSConnection(key[0], key[1], context=ctx, timeout=15)
    conn = conns[key]
    target = u.path + ("?" + u.query if u.query else "")
    headers = {k: v for k, v in c["headers"]}
    headers["X-Case"] = str(c["i"])
    body = None
    if c["body"] is not None:
        headers["Content-Type"] = c["body"][0]
        body = c["body"][1].encode()
    conn.request(c["method"], target, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    return r

for c in json.loads(sys.argv[1]):
    try:
        r = send(c, False)
    except (http.client.HTTPException, OSError):
        # The upstream closed the kept-alive connection; one retry on a new one.
        r = send(c, True)
    print(json.dumps({"i": c["i"], "status": r.status,
                      "audit_id": r.getheader("x-cordon-audit-id"),
                      "decision": r.getheader("x-cordon-decision")}), flush=True)
"#;

/// What the client saw for one case.
#[derive(Debug)]
struct Sent {
    status: u64,
    audit_id: Option<u64>,
    decision: Option<String>,
}

/// A world that also serves the generic hosts and answers the merge case's enrichment lookup.
fn start_world() -> (World, HttpsServer) {
    let w = World::start(POLICY).unwrap();
    w.https.route(
        Some(Method::GET),
        MERGE_PR_PATH,
        Reply::json(200, &json!({"number": 12, "base": {"ref": MERGE_BASE}})),
    );
    let (v4, v6) = (IpAddr::V4(w.ns.v4_at(2)), IpAddr::V6(w.ns.v6_at(2)));
    let generic = HttpsServer::start_on(
        &w.ns,
        &w.ca,
        GENERIC_NAMES,
        &[(v4, 443), (v6, 443), (v4, 8443), (v6, 8443)],
    )
    .unwrap();
    for name in GENERIC_NAMES {
        w.dns.set(name, &[v4, v6]);
    }
    (w, generic)
}

/// A push's actions come from its command list, so its cases carry one: deleting a branch
/// (no pack needed). The route names the action and its head params; the command adds the
/// per-ref params (`push_params`).
fn push_body(c: &Case) -> Option<(&'static str, String)> {
    if !c.action.ends_with("git.push") {
        return None;
    }
    let line = format!("{OLD} {ZERO} {PUSHED_REF}\0report-status\n");
    let body = format!("{:04x}{line}0000", line.len() + 4);
    Some(("application/x-git-receive-pack-request", body))
}

const OLD: &str = "1111111111111111111111111111111111111111";
const ZERO: &str = "0000000000000000000000000000000000000000";
const PUSHED_REF: &str = "refs/heads/gone";

/// What a push case's action holds: the route's params and the deleted ref's.
fn push_params(c: &Case) -> Value {
    let mut p = c.params.as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("ref", json!(PUSHED_REF)),
        ("branch", json!("gone")),
        ("tag", json!("")),
        ("old", json!(OLD)),
        ("new", json!(ZERO)),
        ("create", json!(false)),
        ("delete", json!(true)),
        ("force", json!(false)),
    ] {
        p.insert(k.into(), v);
    }
    Value::Object(p)
}

/// What the proxy adds to a route-named AWS action: the params every AWS action has,
/// read from the request (`service`, `operation`; `region` only from a signature, and
/// these requests are unsigned). The offline matcher gives the route's params alone.
fn aws_params(c: &Case) -> Value {
    let mut p = c.params.as_object().cloned().unwrap_or_default();
    if c.connector == Some("aws-bedrock-runtime") {
        let op = c.action.rsplit('.').next().unwrap_or_default();
        let camel: String = op
            .split('_')
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map_or_else(String::new, |f| {
                    f.to_uppercase().chain(chars).collect::<String>()
                })
            })
            .collect();
        p.insert("service".into(), json!("bedrock"));
        p.insert("operation".into(), json!(camel));
    }
    Value::Object(p)
}

fn case_json(i: usize, c: &Case) -> Value {
    json!({
        "i": i,
        "method": c.method,
        "url": c.url,
        "headers": c.headers,
        "body": push_body(c).or(c.body.map(|(t, b)| (t, b.to_string()))),
    })
}

/// Run the cases `which` (indices into `cases`) from one agent process.
fn send_all(w: &World, cases: &[Case], which: &[usize]) -> BTreeMap<usize, Sent> {
    let list: Vec<Value> = which.iter().map(|&i| case_json(i, &cases[i])).collect();
    let arg = Value::Array(list).to_string();
    let out = w.python(AGENT, CLIENT, &[&arg]).unwrap();
    assert!(out.status.success(), "client failed: {}", show(&out));
    let text = stdout(&out);
    let mut sent = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let i = usize::try_from(v["i"].as_u64().unwrap()).unwrap();
        let s = Sent {
            status: v["status"].as_u64().unwrap(),
            audit_id: v["audit_id"].as_str().and_then(|a| a.parse().ok()),
            decision: v["decision"].as_str().map(str::to_owned),
        };
        sent.insert(i, s);
    }
    assert_eq!(sent.len(), which.len(), "not every case answered:\n{text}");
    sent
}

/// Every request any upstream received, for "did it get there" checks.
fn upstream_cases(w: &World, generic: &HttpsServer) -> Vec<String> {
    let mut all: Vec<Recorded> = w.https.received();
    all.extend(generic.received());
    all.extend(w.git.requests());
    all.iter()
        .filter_map(|r| r.header("x-case").map(str::to_owned))
        .collect()
}

/// One line per case whose record differs from the expectation; empty when all match.
fn mismatches(
    cases: &[Case],
    sent: &BTreeMap<usize, Sent>,
    records: &[AuditRecord],
    reached: &[String],
) -> Vec<String> {
    let by_seq: BTreeMap<u64, &AuditRecord> = records.iter().map(|r| (r.seq, r)).collect();
    let mut bad = Vec::new();
    for (&i, s) in sent {
        let c = &cases[i];
        let what = format!("#{i} {} {}", c.method, c.url);
        let Some(rec) = s.audit_id.and_then(|id| by_seq.get(&id)) else {
            bad.push(format!(
                "{what}: not forwarded (status {}, decision {:?}, audit id {:?})",
                s.status, s.decision, s.audit_id
            ));
            continue;
        };
        let got = (
            rec.kind,
            rec.chain.as_deref(),
            rec.connector.as_deref(),
            rec.action.as_deref(),
            Value::Object(rec.params.clone()),
            verdict(rec),
        );
        let want = (
            EventKind::Request,
            Some(AGENT),
            c.connector,
            Some(c.action),
            if push_body(c).is_some() {
                push_params(c)
            } else {
                aws_params(c)
            },
            "allow",
        );
        if got != want {
            bad.push(format!("{what}\n   got  {got:?}\n   want {want:?}"));
        }
        if !reached.iter().any(|x| *x == i.to_string()) {
            bad.push(format!("{what}: allowed but never reached an upstream"));
        }
    }
    bad
}

fn check(which: &[usize]) {
    let cases = all_cases();
    let (w, generic) = start_world();
    let sent = send_all(&w, &cases, which);
    let trail = w.trail().unwrap();
    let bad = mismatches(
        &cases,
        &sent,
        trail.records(),
        &upstream_cases(&w, &generic),
    );
    assert!(
        bad.is_empty(),
        "{} of {} case(s) differ:\n{}\ntrail:\n{trail}",
        bad.len(),
        which.len(),
        bad.join("\n")
    );
}

#[test]
fn every_shipped_route_becomes_its_action_with_exact_params_through_the_proxy() {
    require_root_or_skip!();
    let which: Vec<usize> = (0..all_cases().len()).collect();
    check(&which);
}

/// The `action = "..."` of every route in the shipped connector files. Routes are flat TOML
/// tables, so the line form is the whole grammar there is to read.
fn shipped_actions() -> BTreeSet<String> {
    let dir = workspace_root().join("policies/connectors");
    let mut actions = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let value = line.trim().strip_prefix("action").map(str::trim_start);
            if let Some(value) = value.and_then(|v| v.strip_prefix('=')) {
                actions.insert(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    assert!(!actions.is_empty(), "no routes found in {}", dir.display());
    actions
}

#[test]
fn the_case_table_covers_every_action_of_every_shipped_route() {
    let covered: BTreeSet<&str> = all_cases().iter().map(|c| c.action).collect();
    let missing: Vec<String> = shipped_actions()
        .into_iter()
        .filter(|a| !covered.contains(a.as_str()))
        .collect();
    assert!(missing.is_empty(), "routes without a case: {missing:?}");
}
