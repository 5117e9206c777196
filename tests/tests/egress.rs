//! Forced egress, end to end: real agents in real cgroups behind the real daemon. Every test
//! checks both what reached the upstream and what the audit trail says was decided.

use std::time::{Duration, Instant};

use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{show, stdout};
use cordon_e2e::{World, require_root_or_skip};
use serde_json::json;

/// `allowed.test` may be resolved and fetched; nothing else is allowed.
const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-allowed"
action = "dns.query"
hosts = ["allowed.test"]
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

fn curl(url: &str) -> Vec<&str> {
    vec!["/usr/bin/curl", "-sS", "--max-time", "5", url]
}

#[test]
fn allowed_name_reaches_server_and_denied_name_fails_fast() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();

    let ok = w.run("bot", &curl("http://allowed.test/hello")).unwrap();
    assert!(ok.status.success(), "{}", show(&ok));
    let body: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(body["path"], "/hello", "{}", show(&ok));
    assert_eq!(w.http.count(), 1);
    assert_eq!(w.http.received()[0].host.as_deref(), Some("allowed.test"));

    let started = Instant::now();
    let denied = w.run("bot", &curl("http://denied.test/hello")).unwrap();
    let took = started.elapsed();
    assert!(!denied.status.success(), "{}", show(&denied));
    assert!(took < Duration::from_secs(3), "denial took {took:?}");
    assert_eq!(w.http.count(), 1, "the server saw the denied request");
    assert_eq!(
        w.dns.queries("denied.test"),
        0,
        "a denied name was resolved upstream"
    );

    let t = w.trail().unwrap().of_chain("bot");
    let q = t.one(
        "dns.query",
        &[("name", json!("allowed.test")), ("type", json!("A"))],
    );
    assert_eq!(verdict(q), "allow", "{t}");
    let req = t.one(
        "http.request",
        &[("host", json!("allowed.test")), ("path", json!("/hello"))],
    );
    assert_eq!((verdict(req), rule(req)), ("allow", "http-allowed"), "{t}");
    let dq = t.matching("dns.query", &[("name", json!("denied.test"))]);
    assert!(!dq.is_empty(), "no decision for denied.test:\n{t}");
    assert!(dq.iter().all(|r| verdict(r) == "deny"), "{t}");
}

#[test]
fn a_process_outside_the_agent_cgroup_is_not_intercepted() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // The test itself, on the host: straight to the server, by address, with any Host.
    let mut s = std::net::TcpStream::connect((w.ns.v4(), 80)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /direct HTTP/1.1\r\nHost: denied.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(w.http.count(), 1);
    assert_eq!(w.http.received()[0].path, "/direct");
    let t = w.trail().unwrap();
    assert!(t.is_empty(), "the host's own traffic was decided:\n{t}");
}
