//! `decision = "approved"`: a standing human approval written by
//! `cordon approve --always`. It allows where an `approve` of the same
//! agent would ask, never where a `deny` matches, and a file of approved
//! rules alone changes no agent's default.

mod common;

use common::*;
use serde_json::json;

const BOT: &str = r#"
agents = ["bot", "orch"]
default = "allow"

[[rule]]
id = "merge-main"
action = "github.pr.merge"
when = 'params.base == "main"'
decision = "approve"

[[rule]]
id = "no-delete"
action = "github.branch.delete"
decision = "deny"
"#;

const ALWAYS: &str = r#"
agents = ["bot"]

[[rule]]
id = "always-1"
action = "github.pr.merge"
when = 'chain == ["bot"] && params.repo == "o/r"'
decision = "approved"
reason = "approved always by root"

[[rule]]
id = "always-2"
action = "github.branch.delete"
decision = "approved"
"#;

#[test]
fn an_approved_rule_lifts_the_approval_it_matches_and_nothing_else() {
    let set = set_with(&[("bot.toml", BOT), ("approved-1.toml", ALWAYS)]);
    let merge = json!({"base": "main", "repo": "o/r"});
    let d = decide(&set, &["bot"], "github.pr.merge", merge.clone());
    assert_eq!((short(&d.verdict), &*d.rule_id), ("allow", "always-1"));
    assert_eq!(&*d.reason, "approved always by root");

    // Another repository, or the same agent under another delegator, still asks.
    let other = json!({"base": "main", "repo": "o/other"});
    let d = decide(&set, &["bot"], "github.pr.merge", other);
    assert_eq!((short(&d.verdict), &*d.rule_id), ("approve", "merge-main"));
    let d = decide(&set, &["orch", "bot"], "github.pr.merge", merge);
    assert_eq!(short(&d.verdict), "approve");
}

#[test]
fn an_approved_rule_never_lifts_a_deny() {
    let set = set_with(&[("bot.toml", BOT), ("approved-1.toml", ALWAYS)]);
    let d = decide(
        &set,
        &["bot"],
        "github.branch.delete",
        json!({"branch": "x"}),
    );
    assert_eq!((short(&d.verdict), &*d.rule_id), ("deny", "no-delete"));
}

#[test]
fn a_file_of_approved_rules_changes_no_default() {
    // bot's own default is allow; the approvals file must not make it deny.
    let set = set_with(&[("bot.toml", BOT), ("approved-1.toml", ALWAYS)]);
    let d = decide(&set, &["bot"], "slack.post", json!({}));
    assert_eq!(
        (short(&d.verdict), &*d.rule_id),
        ("allow", "default:bot.toml")
    );

    // Alone, it denies everything it does not name (the built-in default).
    let alone = set_with(&[("approved-1.toml", ALWAYS)]);
    let d = decide(&alone, &["bot"], "slack.post", json!({}));
    assert_eq!(short(&d.verdict), "deny");
}

#[test]
fn approved_is_not_a_default() {
    let dir = dir_with(&[("a.toml", "agents = [\"bot\"]\ndefault = \"approved\"\n")]);
    let err = cordon_policy::PolicySet::load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a default"), "{err}");
}

#[test]
fn an_approved_rule_whose_condition_fails_does_not_match() {
    let failing = r#"
agents = ["bot"]

[[rule]]
id = "always-x"
action = "github.pr.merge"
when = 'params.missing == "x"'
decision = "approved"
"#;
    let set = set_with(&[("bot.toml", BOT), ("approved-x.toml", failing)]);
    let d = decide(&set, &["bot"], "github.pr.merge", json!({"base": "main"}));
    assert_eq!((short(&d.verdict), &*d.rule_id), ("approve", "merge-main"));
}
