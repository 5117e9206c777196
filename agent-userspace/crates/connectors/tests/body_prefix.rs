//! Body params from a bounded prefix: what survives a cut, and that nothing is invented.

mod common;

use common::{act, shipped};
use cordon_connectors::{ConnectorSet, RequestHead};
use http::{HeaderMap, Method};
use serde_json::json;

fn stripe_charge(set: &ConnectorSet) -> cordon_connectors::RouteMatch {
    let headers = HeaderMap::new();
    set.match_head(&RequestHead {
        method: &Method::POST,
        host: "api.stripe.com",
        port: 443,
        path: "/v1/charges",
        query: None,
        headers: &headers,
    })
}

#[test]
fn body_prefix_is_needed_only_for_body_params() {
    let set = shipped();
    assert!(stripe_charge(&set).body_prefix_needed());
    let headers = HeaderMap::new();
    let m = set.match_head(&RequestHead {
        method: &Method::DELETE,
        host: "api.github.com",
        port: 443,
        path: "/repos/o/r/git/refs/heads/main",
        query: None,
        headers: &headers,
    });
    assert!(!m.body_prefix_needed());
    assert_eq!(m.params()["branch"], json!("main"));
}

#[test]
fn a_cut_json_body_gives_no_params_since_a_key_may_come_again_after_the_cut() {
    let set = shipped().with_body_limit(80);
    let body = format!(
        r#"{{"model": "gpt-4o", "max_tokens": 64, "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(500)
    );
    let a = act(
        &set,
        "POST",
        "https://api.openai.com/v1/chat/completions",
        &[],
        Some(("application/json", body.as_bytes())),
    );
    assert_eq!(a.params.get("model"), None);
    assert_eq!(a.params.get("max_tokens"), None);
}

#[test]
fn no_value_of_a_cut_body_is_read() {
    let set = shipped().with_body_limit(20);
    // The cut after 20 bytes falls inside the amount: 5000000 must not read as 50.
    let body = b"currency=usd&amount=5000000";
    let a = stripe_charge(&set).complete(body, Some("application/x-www-form-urlencoded"));
    assert_eq!(a.params.get("currency"), None);
    assert_eq!(a.params.get("amount"), None);
    // Nor the amount before the cut: it may be given again after it.
    let body = b"amount=500&currency=usd&amount=500000";
    let a = stripe_charge(&set).complete(body, Some("application/x-www-form-urlencoded"));
    assert_eq!(a.params.get("amount"), None);
    let body = br#"{"currency": "usd", "amount": 5000000}"#;
    let a = stripe_charge(&set).complete(&body[..], Some("application/json"));
    assert_eq!(a.params.get("amount"), None);
}

#[test]
fn every_cut_of_a_body_yields_a_subset_of_the_full_params() {
    let bodies: [(&str, &[u8]); 4] = [
        ("application/json", br#"{"amount": 123456, "currency": "usd", "customer": "cus_9", "nested": {"a": [1, 2, "x\"y"]}}"#),
        ("application/x-www-form-urlencoded", b"amount=123456&currency=usd&customer=cus_9&metadata%5Bk%5D=v"),
        ("multipart/form-data; boundary=q", b"--q\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n123456\r\n--q\r\nContent-Disposition: form-data; name=\"currency\"\r\n\r\nusd\r\n--q--\r\n"),
        ("application/json", br#"{"amount": "123456", "currency": "usd""#),
    ];
    let mut set = shipped();
    for (ct, body) in bodies {
        set.set_body_limit(body.len() + 1);
        let full = stripe_charge(&set).complete(body, Some(ct)).params;
        assert!(
            full.contains_key("amount") && full.contains_key("currency"),
            "{ct}: {full:?}"
        );
        for cut in 0..body.len() {
            set.set_body_limit(cut);
            let partial = stripe_charge(&set).complete(body, Some(ct)).params;
            for (k, v) in &partial {
                assert_eq!(
                    full.get(k),
                    Some(v),
                    "{ct} cut at {cut}: {k} invented or changed"
                );
            }
        }
    }
}

#[test]
fn garbage_bodies_never_panic_and_yield_no_body_params() {
    let set = shipped();
    for body in [
        &b"\xff\xfe{{{"[..],
        b"{\"amount\": }",
        b"[[[[",
        b"\"",
        b"amount=%ZZ&&==",
    ] {
        for ct in [
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let a = stripe_charge(&set).complete(body, ct);
            if let Some(v) = a.params.get("amount") {
                assert!(v.is_i64(), "{v:?}");
            }
        }
    }
}

#[test]
fn conflicting_repeats_make_a_param_absent() {
    let set = shipped();
    let a = stripe_charge(&set).complete(
        b"amount=1&amount=999999",
        Some("application/x-www-form-urlencoded"),
    );
    assert_eq!(a.params.get("amount"), None);
    let a = stripe_charge(&set).complete(
        br#"{"amount": 1, "amount": 999999}"#,
        Some("application/json"),
    );
    assert_eq!(a.params.get("amount"), None);
}

#[test]
fn body_without_content_type_is_sniffed() {
    let set = shipped();
    let a = stripe_charge(&set).complete(br#" {"amount": 10}"#, None);
    assert_eq!(a.params["amount"], json!(10));
    let a = stripe_charge(&set).complete(b"amount=10", None);
    assert_eq!(a.params["amount"], json!(10));
}
