//! Connector matching (`ConnectorSet::match_head`) and body and param
//! extraction (`RouteMatch::complete`: JSON prefix, forms, multipart, path,
//! query and header params) over the shipped connectors, with the agent's
//! request as the input.
//!
//! `RouteMatch::complete_all` runs too, which reads MCP JSON-RPC bodies
//! and git pushes for the endpoints that speak those.
//!
//! Checks: it never panics; every request gets an action name; a route
//! that reads no body gives the same action whatever the body; and a param
//! read from a body cut at the body limit is never a different value from
//! the one the whole body gives (the cut may only leave params out).
#![no_main]

use std::sync::LazyLock;

use cordon_connectors::{ConnectorSet, RequestHead};
use cordon_fuzz::{request::Request, shipped};
use libfuzzer_sys::fuzz_target;

/// The default limit: every fuzz input fits, so nothing is cut.
static WHOLE: LazyLock<ConnectorSet> = LazyLock::new(|| shipped::connectors(1 << 20));
/// A limit small enough that the fuzzer's bodies are often cut.
const CUT_AT: usize = 48;
static CUT: LazyLock<ConnectorSet> = LazyLock::new(|| shipped::connectors(CUT_AT));

fuzz_target!(|data: &[u8]| {
    let Some(req) = Request::parse(data) else {
        return;
    };
    let head = RequestHead {
        method: &req.method,
        host: &req.host,
        port: req.port,
        path: req.path,
        query: req.query,
        headers: &req.headers,
    };
    let whole = WHOLE.match_head(&head);
    assert!(!whole.action().is_empty(), "a request without an action");
    let reads_body = whole.body_prefix_needed();
    let content_type = req.content_type();
    let full = whole.complete(req.body, content_type);
    if !reads_body {
        let bodiless = WHOLE.match_head(&head).into_action();
        assert_eq!(
            full.params, bodiless.params,
            "a body changed a route that reads none"
        );
    }
    if let Ok(completion) = WHOLE.match_head(&head).complete_all(req.body, content_type) {
        for action in completion.actions() {
            assert!(
                !action.name.is_empty(),
                "a protocol message without an action"
            );
        }
    }
    let prefix = &req.body[..req.body.len().min(CUT_AT)];
    let cut = CUT.match_head(&head).complete(prefix, content_type);
    assert_eq!(cut.name, full.name, "the cut changed the action");
    for (name, value) in &cut.params {
        if let Some(whole_value) = full.params.get(name) {
            assert_eq!(
                value, whole_value,
                "param `{name}` read from the first {CUT_AT} body bytes differs from the whole body's"
            );
        }
    }
});
