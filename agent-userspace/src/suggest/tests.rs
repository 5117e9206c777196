//! The proposal over a recorded learn-mode trail (`testdata/`): pinned byte
//! for byte by a golden file, and checked for what it must always hold:
//! it loads as policy, allows everything that went ahead, nothing that was
//! refused, and names the new access against the policy in force.
//! `UPDATE_GOLDEN=1 cargo test -p agent-userspace suggest` rewrites the
//! golden files after a deliberate change (review their diff).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cordon_audit::{AuditRecord, Decision};
use cordon_policy::{ActionRequest, PolicySet, Verdict};

use super::{Input, suggest};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/suggest/testdata")
        .join(name)
}

fn trail() -> Vec<AuditRecord> {
    let text = std::fs::read_to_string(testdata("learn-trail.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn current() -> PolicySet {
    PolicySet::load_dir(&testdata("policy")).unwrap()
}

fn since() -> Option<DateTime<Utc>> {
    Some("2026-01-05T10:00:00Z".parse().unwrap())
}

fn proposal(records: &[AuditRecord]) -> String {
    let set = current();
    suggest(&Input {
        agent: "coder",
        records,
        since: since(),
        current: Some(&set),
    })
    .unwrap()
}

/// The proposal alone, loaded as a policy directory.
fn load(text: &str) -> PolicySet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("learned.toml"), text).unwrap();
    PolicySet::load_dir(dir.path()).unwrap()
}

fn verdict(set: &PolicySet, r: &AuditRecord) -> Verdict {
    let chain = vec![r.agent.clone().unwrap()];
    set.decide(&ActionRequest {
        chain: &chain,
        action: r.action.as_deref().unwrap(),
        params: &r.params,
        request: None,
        now: r.ts,
    })
    .verdict
}

#[test]
fn the_proposal_for_the_recorded_trail_is_pinned() {
    let got = proposal(&trail());
    let golden = testdata("learn-trail.suggested.toml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(got, want, "proposal changed; UPDATE_GOLDEN=1 to accept");
}

/// A trail recorded from the real daemon (`tests/tests/learn_e2e.rs`: a learning agent's branch
/// delete, fetches and DNS, a kill, a containment refusal) against that test's policy.
#[test]
fn the_proposal_for_a_trail_recorded_by_the_daemon_is_pinned() {
    let text = std::fs::read_to_string(testdata("e2e-trail.jsonl")).unwrap();
    let records: Vec<AuditRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let set = PolicySet::load_dir(&testdata("e2e-policy")).unwrap();
    let got = suggest(&Input {
        agent: "learner",
        records: &records,
        since: None,
        current: Some(&set),
    })
    .unwrap();
    let golden = testdata("e2e-trail.suggested.toml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&golden).unwrap());
    load(&got);
}

#[test]
fn the_same_records_in_another_order_give_the_same_bytes() {
    let mut records = trail();
    let first = proposal(&records);
    records.reverse();
    assert_eq!(proposal(&records), first);
}

#[test]
fn the_proposal_loads_and_allows_everything_that_went_ahead() {
    let records = trail();
    let set = load(&proposal(&records));
    let since = since().unwrap();
    let evidence: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| super::observe::went_ahead(r, "coder", Some(since)))
        .collect();
    assert_eq!(evidence.len(), 10);
    for r in evidence {
        assert_eq!(
            verdict(&set, r),
            Verdict::Allow,
            "{:?} {:?}",
            r.action,
            r.params
        );
    }
}

#[test]
fn refused_actions_other_agents_and_old_records_get_no_rule() {
    let records = trail();
    let text = proposal(&records);
    let set = load(&text);
    for r in records
        .iter()
        .filter(|r| r.action.is_some() && r.kind != cordon_audit::EventKind::ContainRefused)
    {
        let refused = r.decision == Some(Decision::Deny);
        let other = r.agent.as_deref() != Some("coder");
        let old = r.ts < since().unwrap();
        if refused || other || old {
            let mut r = r.clone();
            r.record.agent = Some("coder".into());
            assert_eq!(
                verdict(&set, &r),
                Verdict::Deny,
                "{:?} {:?}",
                r.action,
                r.params
            );
        }
    }
    assert!(!text.contains("github.branch.delete"), "{text}");
    assert!(!text.contains("169.254.169.254"), "{text}");
    assert!(!text.contains("acme/old"), "{text}");
}

#[test]
fn params_are_generalised_only_as_far_as_the_evidence_goes() {
    let text = proposal(&trail());
    assert!(
        text.contains(r#"params.repo in ["acme/docs", "acme/site"]"#),
        "{text}"
    );
    assert!(text.contains("params.amount <= 1200"), "{text}");
    assert!(text.contains(r#"params.base == "main""#), "{text}");
    assert!(text.contains(r#"hosts = ["example.test"]"#), "{text}");
    assert!(text.contains("ports = [443]"), "{text}");
    assert!(text.contains(r#"cidrs = ["198.51.100.7/32"]"#), "{text}");
    assert!(
        text.contains("seen 2 times, first 2026-01-05T12:00:02Z, last 2026-01-05T12:00:05Z"),
        "{text}"
    );
}

#[test]
fn the_diff_names_the_new_access_against_the_policy_in_force() {
    let text = proposal(&trail());
    assert!(
        text.contains("# NEW ACCESS: today needs approval by rule `merge-main` (2 of 2)."),
        "{text}"
    );
    assert!(
        text.contains("# NEW ACCESS: today denied by rule `no-charges` (2 of 2)."),
        "{text}"
    );
    // DNS was allowed already: no new access there.
    let dns = text
        .split("\n\n")
        .find(|s| s.contains("action = \"dns.query\""))
        .unwrap();
    assert!(dns.contains("No new access"), "{dns}");
}

#[test]
fn containment_refusals_become_write_and_socket_entries_but_never_credentials() {
    let text = proposal(&trail());
    assert!(
        text.contains("\"/var/tmp/coder/out.txt\", # refused 2 times"),
        "{text}"
    );
    assert!(
        text.contains("unix_sockets = [\n  \"/run/user/1000/bus\""),
        "{text}"
    );
    assert!(!text.contains("/root/.aws/credentials"), "{text}");
    let set = load(&text);
    let c = set.contain_for("coder");
    assert_eq!(c.write.len(), 1);
    assert!(
        c.read.is_none(),
        "a read list would replace the default one"
    );
}

#[test]
fn a_trail_without_evidence_proposes_deny_by_default() {
    let text = suggest(&Input {
        agent: "nobody-seen",
        records: &trail(),
        since: None,
        current: None,
    })
    .unwrap();
    assert!(
        text.contains("no action of this agent went ahead"),
        "{text}"
    );
    assert!(!text.contains("[[rule]]"), "{text}");
    load(&text);
}

#[test]
fn what_was_seen_at_one_host_is_not_allowed_at_another() {
    let mut records = trail();
    let mut other = records
        .iter()
        .find(|r| r.action.as_deref() == Some("http.request"))
        .unwrap()
        .clone();
    other
        .record
        .params
        .insert("host".into(), "other.test".into());
    other.record.params.insert("path".into(), "/admin".into());
    records.push(other);
    let set = load(&proposal(&records));
    let probe = |host: &str, path: &str| {
        let mut r = records
            .iter()
            .find(|r| r.action.as_deref() == Some("http.request"))
            .unwrap()
            .clone();
        r.record.params.insert("host".into(), host.into());
        r.record.params.insert("path".into(), path.into());
        verdict(&set, &r)
    };
    assert_eq!(probe("other.test", "/admin"), Verdict::Allow);
    assert_eq!(probe("example.test", "/v1/items"), Verdict::Allow);
    assert_eq!(probe("example.test", "/admin"), Verdict::Deny);
    assert_eq!(probe("other.test", "/v1/items"), Verdict::Deny);
}
