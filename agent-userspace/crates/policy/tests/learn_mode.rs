//! `mode = "learn"` through a loaded set and the engine: which agents learn,
//! what a learning agent's refusals become, and what stays enforced.

use chrono::{TimeZone, Utc};
use cordon_policy::{
    ActionRequest, Enforcement, Mode, Outcome, PolicyEngine, PolicySet, RunContext, Verdict,
};
use serde_json::{Map, json};

fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const LEARNER: &str = r#"
agents = ["learner"]
mode = "learn"
default = "deny"

[[rule]]
id = "no-delete"
action = "github.branch.delete"
decision = "deny"

[[limit]]
id = "runaway"
action = "loop.*"
max = 1
per = "1m"
on_exceed = "kill"
"#;

const ENFORCED: &str = r#"
agents = ["enforced"]
default = "deny"
"#;

fn decide(
    engine: &PolicyEngine,
    chain: &[&str],
    action: &str,
    params: Map<String, serde_json::Value>,
) -> Outcome {
    let chain: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
    let now = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
    engine.decide(
        &RunContext {
            instance: "i1".into(),
            agent: chain.last().unwrap().clone(),
            started_at: now,
        },
        &ActionRequest {
            chain: &chain,
            action,
            params: &params,
            request: None,
            now,
        },
    )
}

fn engine(files: &[(&str, &str)]) -> PolicyEngine {
    let engine = PolicyEngine::new();
    let d = dir(files);
    engine.reload(d.path()).unwrap();
    engine
}

#[test]
fn a_learning_agent_is_allowed_what_the_policy_denies_and_told_which_rule() {
    let e = engine(&[("learner.toml", LEARNER)]);
    let o = decide(&e, &["learner"], "github.branch.delete", Map::new());
    assert_eq!(o.enforcement, Enforcement::Allow);
    let would = o.would.expect("would");
    assert_eq!(
        (would.verdict, &*would.rule_id),
        (Verdict::Deny, "no-delete")
    );
    let o = decide(&e, &["learner"], "stripe.refund.create", Map::new());
    assert_eq!(o.enforcement, Enforcement::Allow);
    assert_eq!(&*o.would.expect("would").rule_id, "default:learner.toml");
}

#[test]
fn a_kill_limit_still_kills_a_learning_agent() {
    let e = engine(&[("learner.toml", LEARNER)]);
    assert_eq!(
        decide(&e, &["learner"], "loop.step", Map::new()).enforcement,
        Enforcement::Allow
    );
    let o = decide(&e, &["learner"], "loop.step", Map::new());
    assert!(matches!(o.enforcement, Enforcement::Kill { .. }), "{o:?}");
    assert!(o.would.is_none());
}

#[test]
fn the_address_guard_still_refuses_a_learning_agent() {
    let e = engine(&[("learner.toml", LEARNER)]);
    let params = json!({"ip": "169.254.169.254", "port": 80, "host": ""});
    let o = decide(
        &e,
        &["learner"],
        "tcp.connect",
        params.as_object().unwrap().clone(),
    );
    assert_eq!(o.enforcement, Enforcement::Deny);
    assert_eq!(&*o.decision.rule_id, "ssrf-guard");
}

#[test]
fn an_enforced_agent_and_an_enforced_parent_are_not_loosened() {
    let e = engine(&[("learner.toml", LEARNER), ("enforced.toml", ENFORCED)]);
    let o = decide(&e, &["enforced"], "github.branch.delete", Map::new());
    assert_eq!(o.enforcement, Enforcement::Deny);
    let o = decide(
        &e,
        &["enforced", "learner"],
        "github.branch.delete",
        Map::new(),
    );
    assert_eq!(o.enforcement, Enforcement::Deny);
    assert!(o.would.is_none());
}

#[test]
fn learning_needs_every_file_naming_the_agent_to_say_so() {
    let glob = "agents = [\"learn*\"]\ndefault = \"deny\"\n";
    let d = dir(&[("learner.toml", LEARNER), ("all.toml", glob)]);
    let set = PolicySet::load_dir(d.path()).unwrap();
    assert_eq!(set.mode_for("learner"), Mode::Enforce);
    let d = dir(&[("learner.toml", LEARNER)]);
    let set = PolicySet::load_dir(d.path()).unwrap();
    assert_eq!(set.mode_for("learner"), Mode::Learn);
    assert_eq!(set.mode_for("stranger"), Mode::Enforce);
}

#[test]
fn a_misspelt_mode_names_file_line_and_field_and_keeps_the_old_set() {
    let e = engine(&[("learner.toml", LEARNER)]);
    let old = e.version().unwrap();
    let bad = dir(&[("learner.toml", "agents = [\"learner\"]\nmode = \"lern\"\n")]);
    let err = e.reload(bad.path()).unwrap_err().to_string();
    assert!(
        err.starts_with("learner.toml:2:8: `mode`: unknown mode \"lern\""),
        "{err}"
    );
    assert_eq!(e.version().unwrap(), old);
    assert_eq!(e.snapshot().unwrap().mode_for("learner"), Mode::Learn);
}

#[test]
fn mode_in_an_extended_file_is_an_error() {
    let top = "agents = [\"a\"]\nextends = [\"sub/base.toml\"]\n";
    let d = dir(&[("a.toml", top)]);
    std::fs::create_dir_all(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("sub/base.toml"), "mode = \"learn\"\n").unwrap();
    let err = PolicySet::load_dir(d.path()).unwrap_err().to_string();
    assert!(
        err.starts_with("sub/base.toml:1:8:") && err.contains("`mode`"),
        "{err}"
    );
}
