//! The example policies in policies/ load, and the three example agents
//! decide as docs/policy.md says.

mod common;

use common::*;
use cordon_policy::PolicySet;
use serde_json::json;
use std::path::PathBuf;

fn policies() -> PolicySet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../policies");
    PolicySet::load_dir(&dir).unwrap()
}

#[test]
fn every_top_level_policy_file_loads() {
    let set = policies();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../policies");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(
                set.files().contains(&name.as_str()),
                "{name} is not in force"
            );
        }
    }
    assert!(set.files().contains(&"base/network.toml"));
    assert!(!set.files().iter().any(|f| f.starts_with("connectors/")));
    for agent in ["researcher", "deployer", "support"] {
        assert!(set.agents().contains(&agent), "{agent}");
    }
}

#[test]
fn example_agents_decide_as_documented() {
    let set = policies();
    // Monday 10:00 in Berlin; Saturday for the freeze.
    let weekday = "2025-01-06T09:00:00Z";
    let saturday = "2025-01-11T11:00:00Z";
    let cases: &[(&str, &str, serde_json::Value, &str, &str, &str)] = &[
        // researcher: reads only.
        (
            "researcher",
            "github.repo.read",
            json!({"owner": "o", "repo": "r"}),
            weekday,
            "allow",
            "gh-read",
        ),
        (
            "researcher",
            "github.git.fetch",
            json!({}),
            weekday,
            "allow",
            "gh-fetch",
        ),
        (
            "researcher",
            "github.pr.merge",
            json!({"base": "feature"}),
            weekday,
            "deny",
            "default:researcher.toml",
        ),
        (
            "researcher",
            "github.issue.create",
            json!({}),
            weekday,
            "deny",
            "default:researcher.toml",
        ),
        (
            "researcher",
            "http.request",
            json!({"method": "GET", "host": "api.github.com", "path": "/repos"}),
            weekday,
            "allow",
            "gh-http-read",
        ),
        (
            "researcher",
            "http.request",
            json!({"method": "POST", "host": "api.github.com", "path": "/repos"}),
            weekday,
            "deny",
            "default:researcher.toml",
        ),
        (
            "researcher",
            "openai.chat.create",
            json!({"model": "gpt-4o"}),
            weekday,
            "allow",
            "llm-openai",
        ),
        (
            "researcher",
            "anthropic.message.create",
            json!({"model": "claude", "max_tokens": 4096}),
            weekday,
            "allow",
            "llm-anthropic",
        ),
        (
            "researcher",
            "stripe.charge.create",
            json!({"amount": 1}),
            weekday,
            "deny",
            "default:researcher.toml",
        ),
        (
            "researcher",
            "tcp.connect",
            json!({"ip": "140.82.112.5", "port": 443, "host": "api.github.com"}),
            weekday,
            "allow",
            "net-github",
        ),
        (
            "researcher",
            "tcp.connect",
            json!({"ip": "104.18.7.192", "port": 443, "host": "api.openai.com"}),
            weekday,
            "allow",
            "net-llm-apis",
        ),
        (
            "researcher",
            "tcp.connect",
            json!({"ip": "140.82.112.5", "port": 25, "host": "api.github.com"}),
            weekday,
            "deny",
            "net-no-smtp",
        ),
        (
            "researcher",
            "tcp.connect",
            json!({"ip": "169.254.169.254", "port": 80, "host": "api.github.com"}),
            weekday,
            "deny",
            "ssrf-guard",
        ),
        (
            "researcher",
            "dns.query",
            json!({"name": "api.github.com", "type": "A"}),
            weekday,
            "allow",
            "dns-github",
        ),
        (
            "researcher",
            "dns.query",
            json!({"name": "api.github.com", "type": "AXFR"}),
            weekday,
            "deny",
            "dns-no-zone-transfer",
        ),
        (
            "researcher",
            "dns.query",
            json!({"name": "evil.example", "type": "A"}),
            weekday,
            "deny",
            "default:researcher.toml",
        ),
        // deployer: merges to main need approval, feature merges don't, no deletes.
        (
            "deployer",
            "github.pr.merge",
            json!({"owner": "o", "repo": "r", "number": 1, "base": "main"}),
            weekday,
            "approve",
            "merge-main-approval",
        ),
        (
            "deployer",
            "github.pr.merge",
            json!({"owner": "o", "repo": "r", "number": 2, "base": "feature/x"}),
            weekday,
            "allow",
            "merge-feature",
        ),
        (
            "deployer",
            "github.pr.merge",
            json!({"base": "feature/x"}),
            saturday,
            "deny",
            "schedule:weekend-freeze",
        ),
        (
            "deployer",
            "github.branch.delete",
            json!({"owner": "o", "repo": "r", "branch": "old"}),
            weekday,
            "deny",
            "no-branch-delete",
        ),
        (
            "deployer",
            "github.repo.delete",
            json!({}),
            weekday,
            "deny",
            "no-repo-delete",
        ),
        (
            "deployer",
            "github.branch.create",
            json!({"branch": "feature/y"}),
            weekday,
            "allow",
            "gh-work",
        ),
        (
            "deployer",
            "github.git.push",
            json!({"branch": "feature/y"}),
            weekday,
            "allow",
            "gh-work",
        ),
        (
            "deployer",
            "github.git.push",
            json!({"branch": "main"}),
            weekday,
            "approve",
            "push-main-approval",
        ),
        (
            "deployer",
            "github.git.push",
            json!({}),
            weekday,
            "approve",
            "push-main-approval",
        ),
        (
            "deployer",
            "github.release.create",
            json!({}),
            weekday,
            "approve",
            "release-approval",
        ),
        (
            "deployer",
            "github.workflow.dispatch",
            json!({}),
            weekday,
            "allow",
            "gh-work",
        ),
        (
            "deployer",
            "github.workflow.dispatch",
            json!({}),
            "2025-01-06T18:00:00Z",
            "approve",
            "dispatch-outside-hours",
        ),
        (
            "deployer",
            "stripe.charge.create",
            json!({"amount": 1}),
            weekday,
            "deny",
            "default:deployer.toml",
        ),
        // support: Stripe reads, Slack posts, big charges need approval.
        (
            "support",
            "stripe.customer.read",
            json!({}),
            weekday,
            "allow",
            "stripe-read",
        ),
        (
            "support",
            "stripe.charge.create",
            json!({"amount": 500, "currency": "eur"}),
            weekday,
            "allow",
            "charge",
        ),
        (
            "support",
            "stripe.charge.create",
            json!({"amount": 1000, "currency": "eur"}),
            weekday,
            "allow",
            "charge",
        ),
        (
            "support",
            "stripe.charge.create",
            json!({"amount": 1001, "currency": "eur"}),
            weekday,
            "approve",
            "big-charge-approval",
        ),
        (
            "support",
            "stripe.refund.create",
            json!({"amount": 10}),
            weekday,
            "approve",
            "refund-approval",
        ),
        (
            "support",
            "stripe.transfer.create",
            json!({"amount": 10}),
            weekday,
            "deny",
            "no-transfers",
        ),
        (
            "support",
            "slack.message.post",
            json!({"channel": "#support"}),
            weekday,
            "allow",
            "slack-post",
        ),
        (
            "support",
            "slack.message.post",
            json!({"channel": "#general"}),
            weekday,
            "deny",
            "no-broadcast",
        ),
        (
            "support",
            "slack.file.upload",
            json!({}),
            weekday,
            "approve",
            "slack-upload-approval",
        ),
        (
            "support",
            "github.issue.create",
            json!({}),
            weekday,
            "deny",
            "default:support.toml",
        ),
        (
            "support",
            "tcp.connect",
            json!({"ip": "::ffff:10.0.0.8", "port": 443, "host": "api.stripe.com"}),
            weekday,
            "deny",
            "ssrf-guard",
        ),
        (
            "support",
            "tcp.connect",
            json!({"ip": "54.187.174.169", "port": 443, "host": "api.stripe.com"}),
            weekday,
            "allow",
            "net-saas",
        ),
        // Nobody else.
        (
            "intruder",
            "github.repo.read",
            json!({}),
            weekday,
            "deny",
            "no-policy",
        ),
    ];
    for (agent, action, p, now, want, rule) in cases {
        let d = decide_at(&set, &[agent], action, p.clone(), now);
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref()),
            (*want, *rule),
            "{agent} {action} {p} at {now}"
        );
    }
}

#[test]
fn example_credentials_and_envelopes() {
    let set = policies();
    assert_eq!(
        set.credentials_for("deployer")
            .get("github")
            .map(String::as_str),
        Some("deployer-github")
    );
    let envelope = set.envelope_for(&chain(&["support"]));
    assert_eq!(envelope.max_actions, Some(3000));
    assert_eq!(envelope.max_cost_usd, Some(3.0));
    let limits = set.limits_for("support");
    assert!(
        limits
            .iter()
            .any(|l| l.id.as_ref() == "support-charges" && l.max == 30)
    );
}
