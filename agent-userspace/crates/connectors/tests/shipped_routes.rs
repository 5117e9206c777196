//! Every shipped route, driven by a table: method + URL + body -> action + exact params.

mod common;
mod route_cases;

use common::{act, shipped, shipped_dir};
use route_cases::all_cases;
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn every_case_becomes_the_expected_action_with_exactly_the_expected_params() {
    let set = shipped();
    let mut failures = Vec::new();
    for c in all_cases() {
        let body = c.body.map(|(ct, b)| (ct, b.as_bytes()));
        let a = act(&set, c.method, c.url, c.headers, body);
        let got = (
            a.connector.as_deref(),
            a.name.as_str(),
            Value::Object(a.params.clone()),
        );
        let want = (c.connector, c.action, c.params.clone());
        if got != want {
            failures.push(format!(
                "{} {}\n   got  {:?}\n   want {:?}",
                c.method, c.url, got, want
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_action_of_every_shipped_route() {
    let covered: BTreeSet<&str> = all_cases().iter().map(|c| c.action).collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(shipped_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        for route in doc
            .get("route")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let action = route["action"].as_str().unwrap().to_string();
            if !covered.contains(action.as_str()) {
                missing.push(format!("{}: {action}", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a test case:\n{}",
        missing.join("\n")
    );
}

#[test]
fn actions_the_policy_crate_relies_on_exist() {
    let covered: BTreeSet<&str> = all_cases().iter().map(|c| c.action).collect();
    for name in [
        "github.issue.create",
        "github.issue.update",
        "github.issue.comment",
        "github.pr.create",
        "github.pr.merge",
        "github.pr.review",
        "github.branch.create",
        "github.branch.delete",
        "github.contents.write",
        "github.contents.delete",
        "github.repo.create",
        "github.repo.delete",
        "github.release.create",
        "github.workflow.dispatch",
        "github.git.fetch",
        "github.git.push",
        "stripe.charge.create",
        "stripe.payment_intent.create",
        "stripe.refund.create",
        "stripe.customer.create",
        "stripe.transfer.create",
        "openai.chat.create",
        "openai.response.create",
        "openai.embedding.create",
        "anthropic.message.create",
        "slack.message.post",
        "slack.file.upload",
        "git.fetch",
        "git.push",
        "http.request",
    ] {
        assert!(covered.contains(name), "{name} is not produced by any case");
    }
}
