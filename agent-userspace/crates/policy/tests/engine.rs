//! The stateful engine: fail-closed start, reload, rate limits and
//! run envelopes. Time comes from the requests, so nothing sleeps.

mod common;

use chrono::{DateTime, Duration as Span, Utc};
use common::*;
use cordon_policy::{ActionRequest, Enforcement, EnvelopeBound, Outcome, PolicyEngine, RunContext};
use serde_json::json;
use std::time::Duration;

const POLICY: &str = r#"
agents = ["bot"]
default = "deny"

[[rule]]
action = "stripe.*"
decision = "allow"

[[rule]]
id = "merge"
action = "github.pr.merge"
decision = "approve"

[[rule]]
id = "no-delete"
action = "github.branch.delete"
decision = "deny"

[[limit]]
id = "charges"
action = "stripe.charge.create"
max = 30
per = "1m"
on_exceed = "deny"

[[limit]]
id = "refunds"
action = "stripe.refund.create"
max = 2
per = "1h"
on_exceed = "approve"

[[limit]]
id = "loop"
action = "github.branch.delete"
max = 3
per = "10s"
on_exceed = "kill"

[envelope]
max_runtime = "10m"
max_actions = 500
max_cost_usd = 0.50
"#;

fn loaded_engine() -> PolicyEngine {
    let engine = PolicyEngine::new();
    let dir = dir_with(&[("bot.toml", POLICY)]);
    engine.reload(dir.path()).unwrap();
    engine
}

fn run(instance: &str, started: DateTime<Utc>) -> RunContext {
    RunContext {
        instance: instance.into(),
        agent: "bot".into(),
        started_at: started,
    }
}

fn act(
    engine: &PolicyEngine,
    run: &RunContext,
    agents: &[&str],
    action: &str,
    now: DateTime<Utc>,
) -> Outcome {
    let chain = chain(agents);
    let params = params(json!({}));
    engine.decide(
        run,
        &ActionRequest {
            chain: &chain,
            action,
            params: &params,
            request: None,
            now,
        },
    )
}

#[test]
fn engine_without_a_set_denies_everything() {
    let engine = PolicyEngine::new();
    let t = at(NOON);
    let out = act(&engine, &run("r", t), &["bot"], "stripe.charge.create", t);
    assert_eq!(out.enforcement, Enforcement::Deny);
    assert_eq!(out.decision.rule_id.as_ref(), "no-policy-loaded");
    assert!(engine.version().is_none());
}

#[test]
fn broken_reload_keeps_the_old_set() {
    let engine = loaded_engine();
    let old = engine.version().unwrap();
    let broken = dir_with(&[(
        "bot.toml",
        "agents = [\"bot\"]\n[[rule]]\naction = \"x\"\ndecision = \"allow\"\nwhen = 'params.'\n",
    )]);
    let err = engine.reload(broken.path()).unwrap_err().to_string();
    assert!(err.starts_with("bot.toml:5:8: rule `bot.toml:1`"), "{err}");
    assert_eq!(engine.version().unwrap(), old);
    let t = at(NOON);
    let out = act(&engine, &run("r", t), &["bot"], "stripe.customer.create", t);
    assert_eq!(out.enforcement, Enforcement::Allow);
    assert_eq!(out.decision.policy_version.as_ref(), old);

    // A good reload swaps, and decisions carry the new version.
    let good = dir_with(&[("bot.toml", "agents = [\"bot\"]\ndefault = \"deny\"\n")]);
    let new = engine.reload(good.path()).unwrap();
    assert_ne!(new, old);
    let out = act(&engine, &run("r", t), &["bot"], "stripe.customer.create", t);
    assert_eq!(out.enforcement, Enforcement::Deny);
    assert_eq!(out.decision.policy_version.as_ref(), new);
}

#[test]
fn limit_refuses_the_31st_within_a_minute_at_the_boundary() {
    let engine = loaded_engine();
    let t0 = at(NOON);
    let r = run("r", t0);
    for i in 0..30 {
        let out = act(
            &engine,
            &r,
            &["bot"],
            "stripe.charge.create",
            t0 + Span::seconds(i),
        );
        assert_eq!(out.enforcement, Enforcement::Allow, "charge {i}");
    }
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.charge.create",
        t0 + Span::milliseconds(59_999),
    );
    assert_eq!(out.enforcement, Enforcement::Deny);
    assert_eq!(out.decision.rule_id.as_ref(), "limit:charges");
    assert_eq!(out.limit.as_ref().unwrap().max, 30);
    // At exactly one minute the first charge leaves the window.
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.charge.create",
        t0 + Span::seconds(60),
    );
    assert_eq!(out.enforcement, Enforcement::Allow);
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.charge.create",
        t0 + Span::milliseconds(60_500),
    );
    assert_eq!(
        out.enforcement,
        Enforcement::Deny,
        "second 1 is still in the window"
    );
    // Other actions are not counted.
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.customer.create",
        t0 + Span::seconds(61),
    );
    assert_eq!(out.enforcement, Enforcement::Allow);
}

#[test]
fn limit_on_exceed_approve_and_kill() {
    let engine = loaded_engine();
    let t0 = at(NOON);
    let r = run("r", t0);
    let refund = |s| {
        act(
            &engine,
            &r,
            &["bot"],
            "stripe.refund.create",
            t0 + Span::seconds(s),
        )
    };
    assert_eq!(refund(0).enforcement, Enforcement::Allow);
    assert_eq!(refund(1).enforcement, Enforcement::Allow);
    let third = refund(2);
    assert_eq!(
        third.enforcement,
        Enforcement::Approve {
            timeout: Duration::from_secs(300)
        }
    );
    assert_eq!(third.decision.rule_id.as_ref(), "limit:refunds");

    // A loop of denied deletes: the 4th within 10 s kills the run.
    for s in 0..3 {
        let out = act(
            &engine,
            &r,
            &["bot"],
            "github.branch.delete",
            t0 + Span::seconds(s),
        );
        assert_eq!(
            (out.enforcement, out.decision.rule_id.as_ref()),
            (Enforcement::Deny, "no-delete")
        );
    }
    let out = act(
        &engine,
        &r,
        &["bot"],
        "github.branch.delete",
        t0 + Span::seconds(3),
    );
    assert!(
        matches!(out.enforcement, Enforcement::Kill { .. }),
        "{out:?}"
    );
    assert_eq!(out.decision.rule_id.as_ref(), "limit:loop");
}

#[test]
fn limits_count_per_agent() {
    let engine = loaded_engine();
    let t0 = at(NOON);
    let a = run("a", t0);
    let policy = dir_with(&[
        ("bot.toml", POLICY),
        (
            "other.toml",
            &POLICY.replace("agents = [\"bot\"]", "agents = [\"other\"]"),
        ),
    ]);
    engine.reload(policy.path()).unwrap();
    for s in 0..30 {
        act(
            &engine,
            &a,
            &["bot"],
            "stripe.charge.create",
            t0 + Span::seconds(s),
        );
    }
    let other = RunContext {
        agent: "other".into(),
        ..run("b", t0)
    };
    let out = act(
        &engine,
        &other,
        &["other"],
        "stripe.charge.create",
        t0 + Span::seconds(31),
    );
    assert_eq!(out.enforcement, Enforcement::Allow);
    let out = act(
        &engine,
        &a,
        &["bot"],
        "stripe.charge.create",
        t0 + Span::seconds(31),
    );
    assert_eq!(out.enforcement, Enforcement::Deny);
}

#[test]
fn envelope_table() {
    let t0 = at(NOON);
    // Runtime: 10 minutes are fine, a second more kills.
    let engine = loaded_engine();
    let r = run("rt", t0);
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.customer.create",
        t0 + Span::minutes(10),
    );
    assert_eq!(out.enforcement, Enforcement::Allow);
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.customer.create",
        t0 + Span::seconds(601),
    );
    assert!(matches!(out.enforcement, Enforcement::Kill { .. }));
    assert_eq!(
        out.envelope.as_ref().unwrap().bound,
        EnvelopeBound::MaxRuntime
    );
    assert_eq!(out.decision.rule_id.as_ref(), "envelope:max_runtime");
    // An idle run is caught by the timer check.
    assert_eq!(
        engine
            .check_envelope(&r, t0 + Span::minutes(11))
            .map(|b| b.bound),
        Some(EnvelopeBound::MaxRuntime)
    );
    assert!(
        engine
            .check_envelope(&run("fresh", t0), t0 + Span::minutes(1))
            .is_none()
    );

    // Actions: the 501st action kills.
    let engine = loaded_engine();
    let r = run("acts", t0);
    for i in 0..500 {
        let out = act(
            &engine,
            &r,
            &["bot"],
            "stripe.customer.create",
            t0 + Span::milliseconds(i),
        );
        assert_eq!(out.enforcement, Enforcement::Allow, "action {i}");
    }
    let out = act(
        &engine,
        &r,
        &["bot"],
        "stripe.customer.create",
        t0 + Span::seconds(1),
    );
    assert_eq!(
        out.envelope.as_ref().unwrap().bound,
        EnvelopeBound::MaxActions
    );
    assert!(matches!(out.enforcement, Enforcement::Kill { .. }));
    // Other runs are counted separately.
    let out = act(
        &engine,
        &run("other", t0),
        &["bot"],
        "stripe.customer.create",
        t0,
    );
    assert_eq!(out.enforcement, Enforcement::Allow);

    // Cost: 0.50 is the budget; spending past it kills on the next action.
    let engine = loaded_engine();
    let r = run("cost", t0);
    engine.add_cost("cost", 0.30);
    assert_eq!(engine.add_cost("cost", 0.20).cost_usd, 0.50);
    let out = act(&engine, &r, &["bot"], "stripe.customer.create", t0);
    assert_eq!(out.enforcement, Enforcement::Allow);
    engine.add_cost("cost", 0.01);
    engine.add_cost("cost", -5.0);
    let out = act(&engine, &r, &["bot"], "stripe.customer.create", t0);
    assert_eq!(
        out.envelope.as_ref().unwrap().bound,
        EnvelopeBound::MaxCostUsd
    );
    assert_eq!(engine.end_run("cost").map(|u| u.actions), Some(2));
}

#[test]
fn engine_is_shared_across_threads() {
    let engine = std::sync::Arc::new(loaded_engine());
    let t0 = at(NOON);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let r = run(&format!("t{i}"), t0);
                (0..10)
                    .filter(|s| {
                        act(
                            &engine,
                            &r,
                            &["bot"],
                            "stripe.charge.create",
                            t0 + Span::seconds(*s),
                        )
                        .enforcement
                            == Enforcement::Allow
                    })
                    .count()
            })
        })
        .collect();
    let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // One agent, one limit: 30 of the 40 charges in the minute go through.
    assert_eq!(allowed, 30);
}
