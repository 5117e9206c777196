use serde_json::json;

use super::*;

#[test]
fn an_approval_shows_the_rule_that_asked_the_credential_and_how_long_it_was_held() {
    let body = json!([{
        "id": "1a2b3c4d",
        "chain": "orch/bot",
        "action": "github.pr.merge",
        "params": {"base": "main"},
        "rule": "merge-main",
        "reason": "merges to main need a human",
        "decided_by": "orch",
        "credential": "deploy-github",
        "held_secs": 12,
        "answer_within_secs": 288
    }]);
    let text = approvals_table(&body);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "1a2b3c4d",
            "orch/bot",
            "github.pr.merge",
            "12s",
            r#"{"base":"main"}"#
        ]
    );
    assert_eq!(
        lines[2].trim(),
        "rule merge-main (policy of orch): merges to main need a human"
    );
    assert_eq!(
        lines[3].trim(),
        "credential: vault entry deploy-github; answer within 288s"
    );
}

#[test]
fn an_approval_without_a_credential_says_none() {
    let body = json!([{"id": "x", "credential": null}]);
    assert!(approvals_table(&body).contains("credential: none;"));
}

#[test]
fn a_grant_row_shows_uses_left_expiry_granter_and_scope() {
    let body = json!([
        {"id": "g1", "chain": ["orch", "bot"], "action": "github.pr.merge",
         "uses_left": 2, "uses": 3, "until": null, "granted_by": "root",
         "params": {"number": "7"}},
        {"id": "g2", "chain": ["bot"], "action": "stripe.charge.create",
         "uses_left": null, "uses": null, "until": "2026-12-05T08:00:00Z",
         "granted_by": "alice"}
    ]);
    let text = grants_table(&body);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "g1",
            "orch/bot",
            "github.pr.merge",
            "2/3",
            "-",
            "root",
            r#"{"number":"7"}"#
        ]
    );
    assert_eq!(
        rows[1],
        [
            "g2",
            "bot",
            "stripe.charge.create",
            "-",
            "2026-12-05T08:00:00Z",
            "alice",
            "(any)"
        ]
    );
}
