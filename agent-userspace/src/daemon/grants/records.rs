//! The audit records of a grant's life: granted, exhausted, expired and
//! revoked (a use is recorded with the request it let through, in
//! `lifecycle.rs`). Pure: a grant in, a record out.
use cordon_audit::{EventKind, NewRecord};

use super::Grant;

fn of(kind: EventKind, g: &Grant, reason: String, by: Option<&str>) -> NewRecord {
    NewRecord {
        agent: g.chain.last().cloned(),
        chain: Some(g.chain_display()),
        action: Some(g.action.clone()),
        params: g.params.clone().unwrap_or_default(),
        rule: Some(g.rule_id()),
        reason: Some(reason),
        approver: by.map(str::to_string),
        ..NewRecord::new(kind)
    }
}

pub fn granted(g: &Grant) -> NewRecord {
    let scope = if g.params.is_some() {
        "these params only"
    } else {
        "any params"
    };
    of(
        EventKind::GrantGranted,
        g,
        format!(
            "{}, {scope}; answers approval {} asked by rule {}",
            g.describe(),
            g.approval,
            g.rule
        ),
        Some(&g.granted_by),
    )
}

pub fn exhausted(g: &Grant) -> NewRecord {
    let n = g.uses.unwrap_or_default();
    of(
        EventKind::GrantExhausted,
        g,
        format!("grant {}: the last of {n} uses was taken", g.id),
        None,
    )
}

pub fn expired(g: &Grant) -> NewRecord {
    let at = g.until.map_or_else(String::new, |u| {
        u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    });
    of(
        EventKind::GrantExpired,
        g,
        format!("grant {} expired at {at}", g.id),
        None,
    )
}

pub fn revoked(g: &Grant, by: &str) -> NewRecord {
    of(
        EventKind::GrantRevoked,
        g,
        format!("grant {} revoked by {by} ({})", g.id, g.describe()),
        Some(by),
    )
}

/// The reason a use's record gives.
pub fn used_reason(g: &Grant) -> String {
    format!(
        "approved earlier by {} (grant {}: {})",
        g.granted_by,
        g.id,
        g.describe()
    )
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::daemon::grants::{GrantAsk, grant::Source};

    fn g(same_params: bool) -> Grant {
        let chain = vec!["orch".to_string(), "bot".to_string()];
        let params = json!({"number": "7"}).as_object().cloned().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-12-05T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ask = GrantAsk {
            uses: Some(3),
            for_secs: Some(3600),
            same_params,
        };
        let src = Source {
            id: "g1".into(),
            chain: &chain,
            action: "github.pr.merge",
            params: &params,
            approval: "a1",
            rule: "merge-main",
            by: "root (uid 0)",
        };
        Grant::from_answer(src, ask, now).unwrap()
    }

    #[test]
    fn a_granted_record_names_the_grant_its_bounds_scope_approval_and_approver() {
        let r = granted(&g(true));
        assert_eq!(r.kind, EventKind::GrantGranted);
        assert_eq!(r.rule.as_deref(), Some("grant:g1"));
        assert_eq!(r.chain.as_deref(), Some("orch/bot"));
        assert_eq!(r.agent.as_deref(), Some("bot"));
        assert_eq!(r.approver.as_deref(), Some("root (uid 0)"));
        assert_eq!(r.params.get("number"), Some(&json!("7")));
        assert_eq!(
            r.reason.as_deref(),
            Some(
                "2 of 3 uses left, until 2026-12-05T07:00:00Z, these params only; \
                 answers approval a1 asked by rule merge-main"
            )
        );
        // An unscoped grant records no params: it covers any.
        assert!(granted(&g(false)).params.is_empty());
    }

    #[test]
    fn end_of_life_records_say_how_the_grant_ended() {
        let grant = g(false);
        assert_eq!(
            exhausted(&grant).reason.as_deref(),
            Some("grant g1: the last of 3 uses was taken")
        );
        assert_eq!(
            expired(&grant).reason.as_deref(),
            Some("grant g1 expired at 2026-12-05T07:00:00Z")
        );
        let r = revoked(&grant, "alice");
        assert_eq!(r.kind, EventKind::GrantRevoked);
        assert_eq!(r.approver.as_deref(), Some("alice"));
        assert_eq!(
            used_reason(&grant),
            "approved earlier by root (uid 0) (grant g1: 2 of 3 uses left, until 2026-12-05T07:00:00Z)"
        );
    }
}
