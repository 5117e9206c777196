use chrono::{DateTime, Utc};
use cordon_policy::{ActionRequest, PolicySet, Verdict};
use serde_json::{Map, Value, json};

use super::*;

const BASE: &str = r#"
agents = ["*"]
default = "allow"

[[rule]]
id = "ask"
action = "*"
decision = "approve"

[[rule]]
id = "no-delete"
action = "github.branch.delete"
decision = "deny"
"#;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T06:40:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn chain() -> Vec<String> {
    vec!["orch".to_string(), "bot".to_string()]
}

fn always<'a>(
    chain: &'a [String],
    action: &'a str,
    params: Option<&'a Map<String, Value>>,
) -> Always<'a> {
    Always {
        approval: "1a2b3c4d",
        chain,
        action,
        params,
        rule: "ask",
        by: "root (uid 0)",
        now: now(),
    }
}

/// The file loaded beside BASE, and the verdict and rule for a request.
fn decide(text: &str, chain: &[String], action: &str, params: Value) -> (Verdict, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), BASE).unwrap();
    std::fs::write(dir.path().join(file_name("1a2b3c4d")), text).unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    let params = params.as_object().cloned().unwrap();
    let d = set.decide(&ActionRequest {
        chain,
        action,
        params: &params,
        request: None,
        now: now(),
    });
    (d.verdict, d.rule_id.to_string())
}

#[test]
fn the_file_says_who_approved_what_and_when_above_one_approved_rule() {
    let c = chain();
    let text = render(&always(&c, "github.pr.merge", None)).unwrap();
    assert_eq!(
        text,
        r#"# A standing approval, written by `cordon approve 1a2b3c4d --always`.
# Approved by root (uid 0) at 2026-12-05T06:40:00Z.
# It answers approval 1a2b3c4d: orch/bot asked for github.pr.merge and rule `ask` held it for a human.
# From now on that action by that chain, with any params, goes ahead without asking;
# a deny still wins. Delete this file to take the approval back.

agents = ["orch", "bot"]

[[rule]]
id = "always-1a2b3c4d"
action = "github.pr.merge"
when = 'chain == ["orch", "bot"]'
decision = "approved"
reason = "approved always by root (uid 0) at 2026-12-05T06:40:00Z (approval 1a2b3c4d)"
"#
    );
}

#[test]
fn the_file_allows_exactly_the_chain_and_action_that_asked() {
    let c = chain();
    let text = render(&always(&c, "github.pr.merge", None)).unwrap();
    let (v, rule) = decide(&text, &c, "github.pr.merge", json!({"number": "9"}));
    assert_eq!((v, rule.as_str()), (Verdict::Allow, "always-1a2b3c4d"));
    let (v, _) = decide(&text, &c, "github.pr.close", json!({}));
    assert!(matches!(v, Verdict::Approve { .. }));
    for other in [vec!["orch".to_string()], vec!["bot".to_string()]] {
        let (v, _) = decide(&text, &other, "github.pr.merge", json!({}));
        assert!(matches!(v, Verdict::Approve { .. }), "{other:?}");
    }
}

#[test]
fn a_params_scoped_file_matches_those_params_and_no_others() {
    let c = chain();
    let params = json!({
        "title": "say \"hi\"\n\tback\\slash \u{1} é",
        "number": 7,
        "big": 18446744073709551615u64,
        "ratio": 0.5,
        "draft": false,
        "labels": ["a", "b"],
        "head": {"ref": "x"},
        "none": null
    });
    let map = params.as_object().cloned().unwrap();
    let text = render(&always(&c, "github.pr.merge", Some(&map))).unwrap();
    let (v, rule) = decide(&text, &c, "github.pr.merge", params.clone());
    assert_eq!(
        (v, rule.as_str()),
        (Verdict::Allow, "always-1a2b3c4d"),
        "{text}"
    );
    let mut other = params.clone();
    other["number"] = json!(8);
    let (v, _) = decide(&text, &c, "github.pr.merge", other);
    assert!(matches!(v, Verdict::Approve { .. }), "{text}");
    let mut more = params;
    more["extra"] = json!(1);
    let (v, _) = decide(&text, &c, "github.pr.merge", more);
    assert!(matches!(v, Verdict::Approve { .. }), "{text}");
}

#[test]
fn the_file_never_lifts_a_deny() {
    let c = chain();
    let text = render(&always(&c, "github.branch.delete", None)).unwrap();
    let (v, rule) = decide(&text, &c, "github.branch.delete", json!({}));
    assert_eq!((v, rule.as_str()), (Verdict::Deny, "no-delete"));
}

#[test]
fn a_name_an_agent_chose_cannot_break_out_of_the_header() {
    let c = chain();
    let action = "mcp.tools.x\nagents = [\"bot\"]\ndefault = \"allow\"";
    let text = render(&always(&c, action, None)).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let keys: Vec<&String> = table.keys().collect();
    assert_eq!(keys, ["agents", "rule"], "{text}");
    let (v, rule) = decide(&text, &c, action, json!({}));
    assert_eq!((v, rule.as_str()), (Verdict::Allow, "always-1a2b3c4d"));
    let (v, _) = decide(&text, &c, "mcp.tools.y", json!({}));
    assert!(matches!(v, Verdict::Approve { .. }));
}

#[test]
fn an_action_that_reads_as_a_pattern_is_refused() {
    let c = chain();
    assert!(matches!(
        render(&always(&c, "github.*", None)),
        Err(AlwaysError::Pattern(_))
    ));
}

#[test]
fn writing_never_replaces_a_file_and_leaves_no_temporary_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "approved-x.toml", "agents = [\"a\"]\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "agents = [\"a\"]\n"
    );
    assert!(matches!(
        write(dir.path(), "approved-x.toml", "other"),
        Err(AlwaysError::Exists(_))
    ));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["approved-x.toml"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o022, 0, "{mode:o}");
}

#[test]
fn the_granted_record_names_the_file_the_policy_version_and_the_approver() {
    let c = chain();
    let params = json!({"number": "7"}).as_object().cloned().unwrap();
    let rec = record(
        &always(&c, "github.pr.merge", Some(&params)),
        "approved-1a2b3c4d.toml",
        "abc123",
    );
    assert_eq!(rec.kind, cordon_audit::EventKind::GrantGranted);
    assert_eq!(rec.rule.as_deref(), Some("always-1a2b3c4d"));
    assert_eq!(rec.chain.as_deref(), Some("orch/bot"));
    assert_eq!(rec.agent.as_deref(), Some("bot"));
    assert_eq!(rec.approver.as_deref(), Some("root (uid 0)"));
    assert_eq!(rec.policy_version.as_deref(), Some("abc123"));
    assert_eq!(rec.params.get("number"), Some(&json!("7")));
    assert_eq!(
        rec.reason.as_deref(),
        Some(
            "always: approved-1a2b3c4d.toml in the policy directory (policy version abc123); \
             answers approval 1a2b3c4d asked by rule ask"
        )
    );
}
