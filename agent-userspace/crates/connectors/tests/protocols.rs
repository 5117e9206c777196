//! gRPC calls and git pushes through `ConnectorSet::match_head` and `complete_all`.

mod common;

use common::{headers, shipped};
use cordon_connectors::{Completion, ProtocolKind, RequestHead, RouteMatch};
use http::Method;
use serde_json::json;

fn head_match(method: Method, url: &str, hdrs: &[(&str, &str)]) -> RouteMatch {
    let uri: http::Uri = url.parse().unwrap();
    let hs = headers(hdrs);
    shipped().match_head(&RequestHead {
        method: &method,
        host: uri.host().unwrap(),
        port: uri.port_u16().unwrap_or(443),
        path: uri.path(),
        query: uri.query(),
        headers: &hs,
    })
}

/// A push body of one command (no pack: a delete).
fn delete_body(refname: &str) -> Vec<u8> {
    let line = format!(
        "{} {} {refname}\0report-status side-band-64k\n",
        "1".repeat(40),
        "0".repeat(40)
    );
    let mut b = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
    b.extend_from_slice(b"");
    b
}

#[test]
fn a_grpc_call_is_named_by_service_and_method() {
    let a = head_match(
        Method::POST,
        "https://grpc.example.com:8443/helloworld.Greeter/SayHello",
        &[("content-type", "application/grpc")],
    )
    .into_action();
    assert_eq!(a.name, "grpc.call");
    assert_eq!(
        serde_json::Value::Object(a.params),
        json!({"host":"grpc.example.com","port":8443,"service":"helloworld.Greeter","method":"SayHello"})
    );
    let plain = head_match(
        Method::POST,
        "https://grpc.example.com/helloworld.Greeter/SayHello",
        &[],
    );
    assert_eq!(plain.action(), "http.request");
}

#[test]
fn a_push_to_github_becomes_one_action_per_ref_with_owner_and_repo() {
    let m = head_match(
        Method::POST,
        "https://github.com/o/r.git/git-receive-pack",
        &[],
    );
    assert_eq!(m.protocol(), ProtocolKind::GitPush);
    assert!(m.body_prefix_needed());
    let Completion::GitPush { push, actions } = m
        .complete_all(&delete_body("refs/heads/old"), None)
        .unwrap()
    else {
        panic!("expected a push")
    };
    assert_eq!(push.updates.len(), 1);
    let a = &actions[0];
    assert_eq!(
        (a.connector.as_deref(), a.name.as_str()),
        (Some("github"), "github.git.push")
    );
    assert_eq!(a.params["owner"], json!("o"));
    assert_eq!(a.params["repo"], json!("r"));
    assert_eq!(a.params["branch"], json!("old"));
    assert_eq!(a.params["delete"], json!(true));
}

#[test]
fn a_push_to_any_other_server_is_git_push_per_ref() {
    let m = head_match(
        Method::POST,
        "https://git.example.org/team/proj.git/git-receive-pack",
        &[],
    );
    assert_eq!(m.protocol(), ProtocolKind::GitPush);
    let actions = m
        .complete_all(&delete_body("refs/tags/v1"), None)
        .unwrap()
        .into_actions();
    assert_eq!(actions[0].name, "git.push");
    assert_eq!(actions[0].params["repo"], json!("team/proj"));
    assert_eq!(actions[0].params["tag"], json!("v1"));
    assert_eq!(actions[0].params["branch"], json!(""));
    // The ref list a push starts with is its own action, so ref rules never see it.
    let adv = head_match(
        Method::GET,
        "https://git.example.org/team/proj.git/info/refs?service=git-receive-pack",
        &[],
    );
    assert_eq!(adv.action(), "git.push.advertise");
    assert_eq!(adv.protocol(), ProtocolKind::Http);
}

#[test]
fn an_unreadable_push_is_an_error_not_an_action() {
    let m = head_match(Method::POST, "https://github.com/o/r/git-receive-pack", &[]);
    assert!(m.complete_all(b"zzzz", None).is_err());
}
