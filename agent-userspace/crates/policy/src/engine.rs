//! The stateful engine the daemon shares between its tasks: the current
//! policy set (swapped atomically on reload), rate limits and run
//! envelopes. Grants a human gave (`cordon approve --uses/--for`) are the
//! daemon's: they are persisted and audited use by use.

use crate::compile::OnExceed;
use crate::decision::{ActionRequest, Decision, Source, Verdict};
use crate::error::PolicyError;
use crate::learn::{Mode, Would, relax};
use crate::limits::RateLimiter;
use crate::runs::{EnvelopeBreach, RunUsage, Runs, check};
use crate::set::PolicySet;
use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One run of an agent (`cordon run --agent NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub instance: String,
    pub agent: String,
    pub started_at: DateTime<Utc>,
}

/// What the daemon must do with the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "enforcement", rename_all = "lowercase")]
pub enum Enforcement {
    Allow,
    Approve {
        #[serde(serialize_with = "secs")]
        timeout: Duration,
    },
    Deny,
    /// Refuse the action and kill the run (freeze its cgroup).
    Kill {
        reason: Arc<str>,
    },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// A rate limit that refused the action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitHit {
    pub limit_id: Arc<str>,
    /// The agent of the chain whose limit it is.
    pub agent: Arc<str>,
    pub max: u32,
    #[serde(serialize_with = "secs")]
    pub per: Duration,
    pub on_exceed: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub enforcement: Enforcement,
    /// The decision that stands; its rule id is `limit:<id>` or
    /// `envelope:<bound>` when those changed the static decision.
    pub decision: Decision,
    /// What the policy set alone said.
    pub static_decision: Decision,
    pub limit: Option<LimitHit>,
    pub envelope: Option<EnvelopeBreach>,
    /// Learn mode: what enforcement would have done with an action that
    /// went ahead (see `learn.rs`).
    pub would: Option<Would>,
}

pub struct PolicyEngine {
    current: ArcSwapOption<PolicySet>,
    limits: RateLimiter,
    runs: Runs,
}

impl Default for PolicyEngine {
    fn default() -> Self {
        PolicyEngine::new()
    }
}

impl PolicyEngine {
    /// An engine with no policy: it denies everything until a set loads.
    pub fn new() -> PolicyEngine {
        PolicyEngine {
            current: ArcSwapOption::empty(),
            limits: RateLimiter::default(),
            runs: Runs::default(),
        }
    }

    /// Loads `dir` fully, then swaps it in; on any error the set in force
    /// stays. Returns the new version.
    pub fn reload(&self, dir: &Path) -> Result<String, PolicyError> {
        match PolicySet::load_dir(dir) {
            Ok(set) => Ok(self.install(set)),
            Err(e) => {
                tracing::warn!(error = %e, kept = ?self.version(), "policy reload rejected");
                Err(e)
            }
        }
    }

    /// Puts `set` in force; returns its version.
    pub fn install(&self, set: PolicySet) -> String {
        let version = set.version().to_string();
        self.current.store(Some(Arc::new(set)));
        tracing::info!(%version, "policy set in force");
        version
    }

    /// The set in force, for explain and credentials.
    pub fn snapshot(&self) -> Option<Arc<PolicySet>> {
        self.current.load_full()
    }

    pub fn version(&self) -> Option<String> {
        self.current
            .load()
            .as_ref()
            .map(|s| s.version().to_string())
    }

    /// Records model spend for a run; returns its usage so far. The next
    /// decision for the run kills it if the spend broke `max_cost_usd`.
    pub fn add_cost(&self, instance: &str, usd: f64) -> RunUsage {
        self.runs.add_cost(instance, usd)
    }

    pub fn run_usage(&self, instance: &str) -> Option<RunUsage> {
        self.runs.usage(instance)
    }

    /// Forgets a finished run's usage.
    pub fn end_run(&self, instance: &str) -> Option<RunUsage> {
        self.runs.end(instance)
    }

    /// Checks a run's envelope without an action, e.g. from a timer, so
    /// that an idle run still dies at `max_runtime`.
    pub fn check_envelope(&self, run: &RunContext, now: DateTime<Utc>) -> Option<EnvelopeBreach> {
        let guard = self.current.load();
        let set = guard.as_ref()?;
        let envelope = set.envelope_for(std::slice::from_ref(&run.agent));
        let usage = self.runs.usage(&run.instance).unwrap_or_default();
        check(&envelope, usage, run.started_at, now)
    }

    /// The full decision: the static verdict of the set in force, then
    /// rate limits and the run envelope.
    pub fn decide(&self, run: &RunContext, req: &ActionRequest<'_>) -> Outcome {
        self.decide_pinned(self.current.load().as_deref(), run, req)
    }

    /// The full decision under `set`, a snapshot the caller pinned (the
    /// proxy pins one per request, so the decision, the credential choice
    /// and the record all see one generation). Limits and the run envelope
    /// are the engine's live state.
    pub fn decide_pinned(
        &self,
        set: Option<&PolicySet>,
        run: &RunContext,
        req: &ActionRequest<'_>,
    ) -> Outcome {
        let Some(set) = set else {
            return fail_closed(req);
        };
        let static_decision = set.decide(req);
        let mut decision = static_decision.clone();
        let mut enforcement = match decision.verdict {
            Verdict::Allow => Enforcement::Allow,
            Verdict::Approve { timeout } => Enforcement::Approve { timeout },
            Verdict::Deny => Enforcement::Deny,
        };

        let mut limit = None;
        let per_agent: Vec<_> = req
            .chain
            .iter()
            .filter_map(|agent| set.policy_for(agent))
            .filter(|(_, p)| !p.limits.is_empty())
            .collect();
        if !per_agent.is_empty()
            && let Some(refusal) = self.limits.admit(&per_agent, req.action, req.now)
        {
            let l = &refusal.limit;
            let why = format!(
                "rate limit `{}` of agent `{}`: more than {} `{}` in {}s",
                l.id,
                refusal.agent,
                l.max,
                l.action(),
                l.per.as_secs()
            );
            let rule_id: Arc<str> = Arc::from(format!("limit:{}", l.id));
            match l.on_exceed {
                OnExceed::Approve if decision.verdict == Verdict::Allow => {
                    decision.verdict = Verdict::Approve {
                        timeout: l.approval_timeout,
                    };
                    enforcement = Enforcement::Approve {
                        timeout: l.approval_timeout,
                    };
                    decision.rule_id = rule_id;
                    decision.reason = Arc::from(why);
                    decision.decided_by = refusal.agent.clone();
                    decision.source = Source::Limit;
                }
                OnExceed::Approve => {}
                OnExceed::Deny | OnExceed::Kill => {
                    if decision.verdict != Verdict::Deny || l.on_exceed == OnExceed::Kill {
                        decision.rule_id = rule_id;
                        decision.decided_by = refusal.agent.clone();
                        decision.source = Source::Limit;
                    }
                    decision.verdict = Verdict::Deny;
                    let reason: Arc<str> = Arc::from(why);
                    if l.on_exceed == OnExceed::Kill {
                        decision.reason = reason.clone();
                        enforcement = Enforcement::Kill { reason };
                    } else if enforcement != Enforcement::Deny {
                        decision.reason = reason;
                        enforcement = Enforcement::Deny;
                    }
                }
            }
            limit = Some(LimitHit {
                limit_id: l.id.clone(),
                agent: refusal.agent.clone(),
                max: l.max,
                per: l.per,
                on_exceed: match l.on_exceed {
                    OnExceed::Deny => "deny",
                    OnExceed::Approve => "approve",
                    OnExceed::Kill => "kill",
                },
            });
        }

        // The run's own agent bounds it even when it is not in the chain.
        let mut envelope_bounds = set.envelope_for(std::slice::from_ref(&run.agent));
        envelope_bounds.tighten(&set.envelope_for(req.chain));
        let envelope =
            self.runs
                .count_action(&run.instance, run.started_at, req.now, &envelope_bounds);
        if let Some(breach) = &envelope {
            let reason: Arc<str> = Arc::from(breach.reason.as_str());
            decision.verdict = Verdict::Deny;
            decision.rule_id = Arc::from(format!("envelope:{}", breach.bound.name()));
            decision.reason = reason.clone();
            decision.decided_by = Arc::from(run.agent.as_str());
            decision.source = Source::Envelope;
            enforcement = Enforcement::Kill { reason };
        }
        let outcome = Outcome {
            enforcement,
            decision,
            static_decision,
            limit,
            envelope,
            would: None,
        };
        match set.mode_of_chain(req.chain) {
            Mode::Learn => relax(outcome),
            Mode::Enforce => outcome,
        }
    }
}

fn fail_closed(req: &ActionRequest<'_>) -> Outcome {
    let decision = Decision {
        verdict: Verdict::Deny,
        rule_id: Arc::from("no-policy-loaded"),
        reason: Arc::from("no valid policy set has been loaded; everything is denied"),
        decided_by: Arc::from(req.chain.last().map_or("", String::as_str)),
        policy_version: Arc::from("none"),
        source: Source::NoPolicyLoaded,
    };
    Outcome {
        enforcement: Enforcement::Deny,
        static_decision: decision.clone(),
        decision,
        limit: None,
        envelope: None,
        would: None,
    }
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_and_set_are_shareable_between_tasks() {
        assert_send_sync::<super::PolicyEngine>();
        assert_send_sync::<super::PolicySet>();
    }
}
