//! Learning mode: an agent whose policy says `mode = "learn"` has every
//! action the policy would refuse forwarded anyway, and the decision says
//! what enforcement would have done. Only the policy's own refusals are
//! lifted; kills (rate limits with `on_exceed = "kill"`, run envelopes) and
//! the address guard stay, so a learning agent is still contained.

use crate::decision::{Source, Verdict};
use crate::engine::{Enforcement, Outcome};
use serde::Serialize;
use std::sync::Arc;

/// How an agent's decisions are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decisions are enforced (the default).
    #[default]
    Enforce,
    /// Refusals are recorded as what would have happened, and the action
    /// goes ahead.
    Learn,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Learn => "learn",
        }
    }

    /// The mode a policy file spells, or the message saying what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "enforce" => Ok(Mode::Enforce),
            "learn" => Ok(Mode::Learn),
            other => Err(format!(
                "`mode`: unknown mode {other:?}; use \"enforce\" (the default) or \"learn\""
            )),
        }
    }
}

/// What enforcement would have done with an action learn mode let through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Would {
    /// `Deny` or `Approve`: never `Allow`.
    pub verdict: Verdict,
    /// The rule that would have fired.
    pub rule_id: Arc<str>,
    /// Its reason, as enforcement would have given it.
    pub reason: Arc<str>,
}

/// The outcome of a learning agent's action: a refusal the policy made
/// becomes an allow that carries the refusal in `would`; anything else is
/// returned as it was.
pub fn relax(mut outcome: Outcome) -> Outcome {
    let verdict = match outcome.enforcement {
        Enforcement::Deny => Verdict::Deny,
        Enforcement::Approve { timeout } => Verdict::Approve { timeout },
        // A kill is containment, and an allow needs nothing lifted.
        Enforcement::Kill { .. } | Enforcement::Allow => return outcome,
    };
    if !liftable(outcome.decision.source) {
        return outcome;
    }
    let d = &mut outcome.decision;
    outcome.would = Some(Would {
        verdict,
        rule_id: d.rule_id.clone(),
        reason: d.reason.clone(),
    });
    d.reason = Arc::from(format!(
        "learn mode, would {}: {}",
        verdict.name(),
        d.reason
    ));
    d.verdict = Verdict::Allow;
    outcome.enforcement = Enforcement::Allow;
    outcome
}

/// Refusals learn mode may lift: the policy's rules, defaults and
/// non-killing rate limits. The address guard protects the host's own
/// network and Cordon's refusals are not policy, so those stand.
fn liftable(source: Source) -> bool {
    match source {
        Source::Rule | Source::Default | Source::Limit => true,
        Source::AddressGuard
        | Source::NoPolicy
        | Source::NoPolicyLoaded
        | Source::Grant
        | Source::Envelope
        | Source::Cordon => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Decision;
    use std::time::Duration;

    fn outcome(enforcement: Enforcement, verdict: Verdict, source: Source) -> Outcome {
        let decision = Decision {
            verdict,
            rule_id: Arc::from("no-merge"),
            reason: Arc::from("merges need a human"),
            decided_by: Arc::from("coder"),
            policy_version: Arc::from("abc"),
            source,
        };
        Outcome {
            enforcement,
            static_decision: decision.clone(),
            decision,
            limit: None,
            envelope: None,
            would: None,
        }
    }

    #[test]
    fn a_rule_deny_is_allowed_and_says_what_would_have_fired() {
        let o = relax(outcome(Enforcement::Deny, Verdict::Deny, Source::Rule));
        assert_eq!(o.enforcement, Enforcement::Allow);
        assert_eq!(o.decision.verdict, Verdict::Allow);
        let w = o.would.expect("would");
        assert_eq!(w.verdict, Verdict::Deny);
        assert_eq!(&*w.rule_id, "no-merge");
        assert_eq!(&*o.decision.rule_id, "no-merge");
        assert_eq!(
            &*o.decision.reason,
            "learn mode, would deny: merges need a human"
        );
        // What the policy alone said is kept as it was.
        assert_eq!(o.static_decision.verdict, Verdict::Deny);
    }

    #[test]
    fn an_approval_goes_ahead_without_a_human() {
        let timeout = Duration::from_secs(60);
        let o = relax(outcome(
            Enforcement::Approve { timeout },
            Verdict::Approve { timeout },
            Source::Default,
        ));
        assert_eq!(o.enforcement, Enforcement::Allow);
        assert_eq!(
            o.would.expect("would").verdict,
            Verdict::Approve { timeout }
        );
    }

    #[test]
    fn kills_stay_kills() {
        let kill = Enforcement::Kill {
            reason: Arc::from("too many"),
        };
        for source in [Source::Limit, Source::Envelope] {
            let o = relax(outcome(kill.clone(), Verdict::Deny, source));
            assert_eq!(o.enforcement, kill);
            assert_eq!(o.decision.verdict, Verdict::Deny);
            assert!(o.would.is_none());
        }
    }

    #[test]
    fn the_address_guard_and_missing_policy_still_refuse() {
        for source in [Source::AddressGuard, Source::NoPolicy, Source::Cordon] {
            let o = relax(outcome(Enforcement::Deny, Verdict::Deny, source));
            assert_eq!(o.enforcement, Enforcement::Deny, "{source:?}");
            assert!(o.would.is_none());
        }
    }

    #[test]
    fn an_allow_is_untouched() {
        let before = outcome(Enforcement::Allow, Verdict::Allow, Source::Rule);
        assert_eq!(relax(before.clone()), before);
    }

    #[test]
    fn a_misspelt_mode_is_an_error_naming_the_field() {
        assert_eq!(Mode::parse("learn"), Ok(Mode::Learn));
        let e = Mode::parse("lern").unwrap_err();
        assert!(e.contains("`mode`") && e.contains("\"lern\""), "{e}");
    }
}
