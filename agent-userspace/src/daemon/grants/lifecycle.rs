//! A grant's life in the running daemon, each step recorded: given by an
//! operator, used by a request, exhausted, expired, revoked. A use whose
//! record cannot be written is a refusal, like any unrecorded decision.
use std::{sync::Arc, time::Duration};

use cordon_audit::EventKind;
use cordon_policy::{Decision, Enforcement, Outcome, Source, Verdict};

use super::{Grant, Taken, records};
use crate::{
    daemon::Shared,
    request::{
        Ask, Attribution, Kind, Pinned, Refusal,
        record::{DecisionRecord, append},
    },
};

/// Whether a grant may lift this outcome: an approval a rule or a default
/// asked for. A deny is never lifted, nor an approval a rate limit asked
/// for (the limit is there to bring a human back in), nor the envelope.
pub fn liftable(o: &Outcome) -> bool {
    matches!(o.enforcement, Enforcement::Approve { .. })
        && o.limit.is_none()
        && o.envelope.is_none()
        && matches!(o.decision.source, Source::Rule | Source::Default)
}

/// The decision a grant's use stands for.
pub fn granted_decision(asked: &Decision, g: &Grant) -> Decision {
    Decision {
        verdict: Verdict::Allow,
        rule_id: Arc::from(g.rule_id()),
        reason: Arc::from(records::used_reason(g)),
        source: Source::Grant,
        ..asked.clone()
    }
}

/// Takes a use of a grant covering `ask`, if any, and records it (and the
/// grant's exhaustion) before answering. `Ok(None)`: no grant covers it.
pub async fn lift(
    d: &Shared,
    pinned: &Pinned,
    ask: &Ask<'_>,
    outcome: &Outcome,
) -> Result<Option<Decision>, Refusal> {
    if !liftable(outcome) {
        return Ok(None);
    }
    let taken = d.grants.take_use(
        &ask.actor.agent.chain,
        ask.action,
        ask.params,
        chrono::Utc::now(),
    );
    let used = match taken {
        Ok(Some(u)) => u,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(Refusal::new(
                Kind::ApprovalUnavailable,
                format!("a grant covers this action but its use could not be counted: {e}"),
                Attribution::cordon(pinned.version().clone()),
            ));
        }
    };
    let decision = granted_decision(&outcome.decision, &used.grant);
    let rec = DecisionRecord::of(ask, &decision, EventKind::GrantUsed).build();
    if let Err(e) = append(&d.audit, rec).await {
        return Err(crate::daemon::enforce::audit_unavailable(pinned, &e));
    }
    if used.taken == Taken::Exhausted
        && let Err(e) = d.audit.append(&records::exhausted(&used.grant)).await
    {
        return Err(crate::daemon::enforce::audit_unavailable(pinned, &e));
    }
    Ok(Some(decision))
}

/// Records the grant, then puts it in force: a grant the trail does not
/// hold is never used.
pub async fn give(d: &Shared, g: Grant) -> Result<Grant, String> {
    d.audit
        .append(&records::granted(&g))
        .await
        .map_err(|e| format!("the grant was not given: its record could not be written ({e})"))?;
    d.grants
        .add(g.clone())
        .map_err(|e| format!("grant {} was recorded but not stored: {e}", g.id))?;
    Ok(g)
}

/// Takes a grant out of force, then records who did.
pub async fn revoke(d: &Shared, id: &str, by: &str) -> Result<Grant, String> {
    let g = d
        .grants
        .revoke(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no grant {id} (see `cordon grants`)"))?;
    d.audit
        .append(&records::revoked(&g, by))
        .await
        .map_err(|e| format!("grant {id} is revoked, but its record could not be written: {e}"))?;
    Ok(g)
}

/// Records and forgets the grants whose time is up. One whose record
/// cannot be written stays stored (it matches nothing) and is tried again.
pub async fn sweep(d: &Shared, now: chrono::DateTime<chrono::Utc>) {
    for g in d.grants.expired(now) {
        if let Err(e) = d.audit.append(&records::expired(&g)).await {
            tracing::error!(grant = %g.id, "recording an expired grant: {e}");
            continue;
        }
        if let Err(e) = d.grants.forget(&g.id) {
            tracing::error!(grant = %g.id, "forgetting an expired grant: {e}");
        }
    }
}

/// Expired grants are recorded within a second of their deadline.
pub async fn sweep_loop(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        sweep(&d, chrono::Utc::now()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cordon_policy::{EnvelopeBound, EnvelopeBreach, LimitHit};

    use super::*;

    fn decision(verdict: Verdict, source: Source) -> Decision {
        Decision {
            verdict,
            rule_id: Arc::from("merge-main"),
            reason: Arc::from("needs a human"),
            decided_by: Arc::from("bot"),
            policy_version: Arc::from("v1"),
            source,
        }
    }

    fn outcome(enforcement: Enforcement, source: Source) -> Outcome {
        let verdict = match enforcement {
            Enforcement::Allow => Verdict::Allow,
            Enforcement::Approve { timeout } => Verdict::Approve { timeout },
            _ => Verdict::Deny,
        };
        let d = decision(verdict, source);
        Outcome {
            enforcement,
            static_decision: d.clone(),
            decision: d,
            limit: None,
            envelope: None,
            would: None,
        }
    }

    const ASK: Enforcement = Enforcement::Approve {
        timeout: Duration::from_secs(60),
    };

    #[test]
    fn a_grant_lifts_an_approval_a_rule_or_default_asked_for() {
        assert!(liftable(&outcome(ASK, Source::Rule)));
        assert!(liftable(&outcome(ASK, Source::Default)));
    }

    #[test]
    fn a_grant_never_lifts_a_deny_a_kill_or_an_allow() {
        assert!(!liftable(&outcome(Enforcement::Deny, Source::Rule)));
        let kill = Enforcement::Kill {
            reason: Arc::from("x"),
        };
        assert!(!liftable(&outcome(kill, Source::Rule)));
        assert!(!liftable(&outcome(Enforcement::Allow, Source::Rule)));
    }

    #[test]
    fn a_grant_never_lifts_an_approval_a_limit_or_the_envelope_asked_for() {
        assert!(!liftable(&outcome(ASK, Source::Limit)));
        let mut limited = outcome(ASK, Source::Rule);
        limited.limit = Some(LimitHit {
            limit_id: Arc::from("merges"),
            agent: Arc::from("bot"),
            max: 1,
            per: Duration::from_secs(60),
            on_exceed: "approve",
        });
        assert!(!liftable(&limited));
        let mut enveloped = outcome(ASK, Source::Rule);
        enveloped.envelope = Some(EnvelopeBreach {
            bound: EnvelopeBound::MaxActions,
            reason: "too many".into(),
        });
        assert!(!liftable(&enveloped));
    }
}
