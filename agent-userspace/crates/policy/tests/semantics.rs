//! The static decision: precedence, defaults, globs, CEL, delegation.

mod common;

use common::*;
use cordon_policy::Verdict;
use serde_json::json;
use std::time::Duration;

const BOT: &str = r#"
agents = ["bot"]
default = "deny"

[[rule]]
id = "read-anything"
action = "github.*"
decision = "allow"

[[rule]]
id = "merge-main-needs-approval"
action = "github.pr.merge"
when = 'params.base == "main"'
decision = "approve"
approval_timeout = "2m"

[[rule]]
id = "merge-any"
action = "github.pr.merge"
decision = "allow"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "never delete branches"

[[rule]]
id = "big-charge"
action = "stripe.charge.create"
when = "params.amount > 1000"
decision = "approve"

[[rule]]
id = "eur-usd-only"
action = "stripe.charge.create"
when = 'params.currency in ["eur", "usd"]'
decision = "allow"

[[rule]]
id = "no-prod-label"
action = "github.issue.create"
when = '"prod" in params.labels'
decision = "deny"

[[rule]]
id = "small-tokens"
action = "anthropic.message.create"
when = 'params.max_tokens <= 4096 && params.model.startsWith("claude-")'
decision = "allow"
"#;

#[test]
fn precedence_and_cel_table() {
    let set = set_with(&[("bot.toml", BOT)]);
    let cases: &[(&str, serde_json::Value, &str, &str)] = &[
        // Deny wins over a matching glob allow.
        (
            "github.branch.delete",
            json!({"branch": "x"}),
            "deny",
            "no-branch-delete",
        ),
        // Approve beats allow.
        (
            "github.pr.merge",
            json!({"base": "main"}),
            "approve",
            "merge-main-needs-approval",
        ),
        (
            "github.pr.merge",
            json!({"base": "feature"}),
            "allow",
            "read-anything",
        ),
        // Globs.
        ("github.issue.comment", json!({}), "allow", "read-anything"),
        (
            "gitlab.issue.comment",
            json!({}),
            "deny",
            "default:bot.toml",
        ),
        // Numbers.
        (
            "stripe.charge.create",
            json!({"amount": 1001, "currency": "eur"}),
            "approve",
            "big-charge",
        ),
        (
            "stripe.charge.create",
            json!({"amount": 1000, "currency": "eur"}),
            "allow",
            "eur-usd-only",
        ),
        (
            "stripe.charge.create",
            json!({"amount": 10.5, "currency": "usd"}),
            "allow",
            "eur-usd-only",
        ),
        // Strings in lists.
        (
            "stripe.charge.create",
            json!({"amount": 5, "currency": "gbp"}),
            "deny",
            "default:bot.toml",
        ),
        // Lists in params.
        (
            "github.issue.create",
            json!({"labels": ["bug", "prod"]}),
            "deny",
            "no-prod-label",
        ),
        (
            "github.issue.create",
            json!({"labels": ["bug"]}),
            "allow",
            "read-anything",
        ),
        // Strings and numbers together.
        (
            "anthropic.message.create",
            json!({"model": "claude-x", "max_tokens": 1024}),
            "allow",
            "small-tokens",
        ),
        (
            "anthropic.message.create",
            json!({"model": "gpt-x", "max_tokens": 1024}),
            "deny",
            "default:bot.toml",
        ),
        (
            "anthropic.message.create",
            json!({"model": "claude-x", "max_tokens": 9000}),
            "deny",
            "default:bot.toml",
        ),
    ];
    for (action, p, want, rule) in cases {
        let d = decide(&set, &["bot"], action, p.clone());
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref()),
            (*want, *rule),
            "{action} {p}"
        );
        assert_eq!(d.decided_by.as_ref(), "bot");
        assert_eq!(d.policy_version.as_ref(), set.version());
    }
}

#[test]
fn approve_carries_the_rule_timeout_or_five_minutes() {
    let set = set_with(&[("bot.toml", BOT)]);
    let d = decide(&set, &["bot"], "github.pr.merge", json!({"base": "main"}));
    assert_eq!(
        d.verdict,
        Verdict::Approve {
            timeout: Duration::from_secs(120)
        }
    );
    let d = decide(
        &set,
        &["bot"],
        "stripe.charge.create",
        json!({"amount": 5000, "currency": "eur"}),
    );
    assert_eq!(
        d.verdict,
        Verdict::Approve {
            timeout: Duration::from_secs(300)
        }
    );
    assert_eq!(
        d.reason.as_ref(),
        "rule `big-charge` (stripe.charge.create approve)"
    );
}

#[test]
fn failing_condition_never_loosens() {
    // `amount` is missing: the approve rule errors and counts as matching,
    // the allow rule errors and does not.
    let set = set_with(&[("bot.toml", BOT)]);
    let d = decide(
        &set,
        &["bot"],
        "stripe.charge.create",
        json!({"currency": "eur"}),
    );
    assert_eq!(d.rule_id.as_ref(), "big-charge");
    assert!(matches!(d.verdict, Verdict::Approve { .. }));
    let d = decide(&set, &["bot"], "stripe.charge.create", json!({"amount": 5}));
    assert_eq!(
        (d.verdict, d.rule_id.as_ref()),
        (Verdict::Deny, "default:bot.toml")
    );
}

#[test]
fn defaults_table() {
    let allow_all = "agents = [\"a\", \"b\"]\ndefault = \"allow\"\n";
    let approve_b = "agents = [\"b\"]\ndefault = \"approve\"\n";
    let c_no_default = "agents = [\"c\"]\n";
    let set = set_with(&[
        ("1.toml", allow_all),
        ("2.toml", approve_b),
        ("3.toml", c_no_default),
    ]);
    let cases = [
        ("a", "allow", "default:1.toml"),
        // Several files: the strictest default.
        ("b", "approve", "default:2.toml"),
        // A file without `default` denies.
        ("c", "deny", "default:3.toml"),
        // No file names the agent.
        ("stranger", "deny", "no-policy"),
    ];
    for (agent, want, rule) in cases {
        let d = decide(&set, &[agent], "x.y", json!({}));
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref()),
            (want, rule),
            "{agent}"
        );
    }
}

#[test]
fn rules_of_several_files_merge() {
    let a = "agents = [\"bot\"]\n[[rule]]\naction = \"slack.*\"\ndecision = \"allow\"\n";
    let b = "agents = [\"b*\"]\n[[rule]]\naction = \"slack.file.upload\"\ndecision = \"deny\"\n";
    let set = set_with(&[("a.toml", a), ("b.toml", b)]);
    let d = decide(&set, &["bot"], "slack.message.post", json!({}));
    assert_eq!(
        (d.verdict, d.rule_id.as_ref()),
        (Verdict::Allow, "a.toml:1")
    );
    let d = decide(&set, &["bot"], "slack.file.upload", json!({}));
    assert_eq!((d.verdict, d.rule_id.as_ref()), (Verdict::Deny, "b.toml:1"));
    // An agent only a glob names.
    let d = decide(&set, &["builder"], "slack.file.upload", json!({}));
    assert_eq!((d.verdict, d.rule_id.as_ref()), (Verdict::Deny, "b.toml:1"));
    let d = decide(&set, &["builder"], "slack.message.post", json!({}));
    assert_eq!(
        (d.verdict, d.rule_id.as_ref()),
        (Verdict::Deny, "default:b.toml")
    );
}

#[test]
fn extends_pulls_in_base_rules_relative_to_the_file() {
    let base = "[[rule]]\nid = \"base-llm\"\naction = \"openai.*\"\ndecision = \"allow\"\n";
    let common = "extends = [\"llm.toml\"]\n[[rule]]\nid = \"common-deny\"\naction = \"openai.embedding.create\"\ndecision = \"deny\"\n";
    let top = "agents = [\"bot\"]\nextends = [\"base/common.toml\"]\n";
    let set = set_with(&[
        ("bot.toml", top),
        ("base/common.toml", common),
        ("base/llm.toml", base),
    ]);
    let d = decide(&set, &["bot"], "openai.chat.create", json!({}));
    assert_eq!(
        (d.verdict, d.rule_id.as_ref()),
        (Verdict::Allow, "base-llm")
    );
    let d = decide(&set, &["bot"], "openai.embedding.create", json!({}));
    assert_eq!(
        (d.verdict, d.rule_id.as_ref()),
        (Verdict::Deny, "common-deny")
    );
    assert_eq!(
        set.files(),
        vec!["bot.toml", "base/common.toml", "base/llm.toml"]
    );
}

#[test]
fn delegation_can_never_escalate() {
    let orchestrator = r#"
agents = ["orchestrator"]
[[rule]]
action = "github.*"
decision = "allow"
[[rule]]
id = "orch-merge-approval"
action = "github.pr.merge"
decision = "approve"
"#;
    let writer = r#"
agents = ["sub-writer"]
default = "allow"
[[rule]]
id = "writer-no-issues"
action = "github.issue.create"
decision = "deny"
"#;
    let set = set_with(&[("orch.toml", orchestrator), ("writer.toml", writer)]);
    let cases: &[(&[&str], &str, &str, &str, &str)] = &[
        // The sub-agent allows everything by default, the root only github.
        (
            &["orchestrator", "sub-writer"],
            "stripe.refund.create",
            "deny",
            "default:orch.toml",
            "orchestrator",
        ),
        // The root needs approval; the sub-agent's allow cannot lift it.
        (
            &["orchestrator", "sub-writer"],
            "github.pr.merge",
            "approve",
            "orch-merge-approval",
            "orchestrator",
        ),
        // The sub-agent's own deny holds although the root allows.
        (
            &["orchestrator", "sub-writer"],
            "github.issue.create",
            "deny",
            "writer-no-issues",
            "sub-writer",
        ),
        (
            &["orchestrator", "sub-writer"],
            "github.issue.comment",
            "allow",
            "orch.toml:1",
            "orchestrator",
        ),
        // An unknown agent anywhere in the chain denies.
        (
            &["orchestrator", "ghost"],
            "github.issue.comment",
            "deny",
            "no-policy",
            "ghost",
        ),
        (&[], "github.issue.comment", "deny", "no-policy", ""),
    ];
    for (agents, action, want, rule, by) in cases {
        let d = decide(&set, agents, action, json!({}));
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref(), d.decided_by.as_ref()),
            (*want, *rule, *by),
            "{agents:?} {action}"
        );
    }
}

#[test]
fn when_sees_agent_chain_and_request() {
    let policy = r#"
agents = ["*"]
[[rule]]
id = "only-get-from-sub"
action = "http.request"
when = 'agent == "sub" && chain[0] == "root" && request.method == "GET" && request.path.startsWith("/v1/")'
decision = "allow"
"#;
    let set = set_with(&[("all.toml", policy)]);
    let chain = chain(&["root", "sub"]);
    let params = params(json!({}));
    let mut req = cordon_policy::ActionRequest {
        chain: &chain[1..],
        action: "http.request",
        params: &params,
        request: Some(cordon_policy::HttpInfo {
            method: "GET",
            host: "api.test",
            path: "/v1/x",
        }),
        now: at(NOON),
    };
    // `chain[0]` is "sub" here, so the rule does not match.
    assert_eq!(set.decide(&req).verdict, Verdict::Deny);
    req.chain = &chain;
    // "root" fails `agent == "sub"`; the most restrictive answer is deny.
    assert_eq!(set.decide(&req).verdict, Verdict::Deny);
    let policy = policy.replace("agent == \"sub\"", "agent in [\"root\", \"sub\"]");
    let set = set_with(&[("all.toml", &policy)]);
    assert_eq!(set.decide(&req).verdict, Verdict::Allow);
    req.request = Some(cordon_policy::HttpInfo {
        method: "POST",
        host: "api.test",
        path: "/v1/x",
    });
    assert_eq!(set.decide(&req).verdict, Verdict::Deny);
}

#[test]
fn version_changes_with_content_and_is_short_hex() {
    let a = set_with(&[("bot.toml", BOT)]);
    let b = set_with(&[("bot.toml", BOT)]);
    let c = set_with(&[("bot.toml", &BOT.replace("2m", "3m"))]);
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version().len(), 12);
    assert!(a.version().chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn explain_lists_every_rule_and_why() {
    let set = set_with(&[("bot.toml", BOT)]);
    let chain = chain(&["bot"]);
    let params = params(json!({"base": "main"}));
    let trace = set.explain(&cordon_policy::ActionRequest {
        chain: &chain,
        action: "github.pr.merge",
        params: &params,
        request: None,
        now: at(NOON),
    });
    assert_eq!(trace.len(), 8);
    let matched: Vec<&str> = trace
        .iter()
        .filter(|t| t.matched)
        .map(|t| t.rule_id.as_str())
        .collect();
    assert_eq!(
        matched,
        vec!["read-anything", "merge-main-needs-approval", "merge-any"]
    );
    let branch = trace
        .iter()
        .find(|t| t.rule_id == "no-branch-delete")
        .unwrap();
    assert_eq!(branch.note, "action does not match");
    assert_eq!(branch.location, "bot.toml:22");
}

#[test]
fn credentials_map_connectors_to_vault_entries() {
    let a = "agents = [\"deploy-bot\"]\n[credentials]\ngithub = \"deploy-bot-github\"\n";
    let set = set_with(&[("a.toml", a)]);
    let creds = set.credentials_for("deploy-bot");
    assert_eq!(
        creds.get("github").map(String::as_str),
        Some("deploy-bot-github")
    );
    assert!(set.credentials_for("other").is_empty());
}

#[test]
fn params_keep_their_json_types_in_when() {
    // Each condition must hold for the params below; one that fails to
    // evaluate or is false leaves the default (deny).
    let conditions = [
        "params.count == 3 && type(params.count) == int",
        "params.huge == 18446744073709551615u && type(params.huge) == uint",
        "params.ratio > 0.4 && type(params.ratio) == double",
        "params.flag && !params.off",
        "params.nothing == null",
        r#"params.name == "deploy" && params.name.startsWith("dep")"#,
        r#"size(params.tags) == 2 && "prod" in params.tags && params.tags[1] == "eu""#,
        r#"params.tags.exists(t, t == "eu") && params.tags.all(t, size(t) > 1)"#,
        r#"params.meta.owner == "ops" && params.meta.limits.max == 10"#,
        r#"has(params.meta.owner) && !has(params.meta.missing) && "owner" in params.meta"#,
        "params.items.map(i, i.n).filter(n, n > 1) == [2, 3]",
    ];
    let p = json!({
        "count": 3,
        "huge": u64::MAX,
        "ratio": 0.5,
        "flag": true,
        "off": false,
        "nothing": null,
        "name": "deploy",
        "tags": ["prod", "eu"],
        "meta": {"owner": "ops", "limits": {"max": 10}},
        "items": [{"n": 1}, {"n": 2}, {"n": 3}],
    });
    for when in conditions {
        let policy = format!(
            "agents = [\"bot\"]\ndefault = \"deny\"\n[[rule]]\naction = \"x.y\"\ndecision = \"allow\"\nwhen = '{when}'\n"
        );
        let set = set_with(&[("bot.toml", &policy)]);
        let d = decide_at(&set, &["bot"], "x.y", p.clone(), NOON);
        assert_eq!(d.verdict, Verdict::Allow, "`{when}`: {}", d.reason);
    }
}
