//! Per-run usage (actions taken, model spend) checked against the envelope.

use crate::compile::Envelope;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// Which envelope bound a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeBound {
    MaxRuntime,
    MaxActions,
    MaxCostUsd,
}

impl EnvelopeBound {
    pub fn name(&self) -> &'static str {
        match self {
            EnvelopeBound::MaxRuntime => "max_runtime",
            EnvelopeBound::MaxActions => "max_actions",
            EnvelopeBound::MaxCostUsd => "max_cost_usd",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvelopeBreach {
    pub bound: EnvelopeBound,
    pub reason: String,
}

/// What a run has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunUsage {
    pub actions: u64,
    pub cost_usd: f64,
}

#[derive(Default)]
pub(crate) struct Runs {
    usage: Mutex<HashMap<String, RunUsage>>,
}

impl Runs {
    /// Counts one more action for `instance` and checks the envelope.
    pub(crate) fn count_action(
        &self,
        instance: &str,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        envelope: &Envelope,
    ) -> Option<EnvelopeBreach> {
        let usage = {
            let Ok(mut runs) = self.usage.lock() else {
                return Some(EnvelopeBreach {
                    bound: EnvelopeBound::MaxActions,
                    reason: "run accounting is unavailable (poisoned lock)".into(),
                });
            };
            let usage = match runs.get_mut(instance) {
                Some(u) => u,
                None => runs.entry(instance.to_string()).or_default(),
            };
            usage.actions += 1;
            *usage
        };
        check(envelope, usage, started_at, now)
    }

    pub(crate) fn add_cost(&self, instance: &str, usd: f64) -> RunUsage {
        let Ok(mut runs) = self.usage.lock() else {
            return RunUsage {
                actions: u64::MAX,
                cost_usd: f64::INFINITY,
            };
        };
        let usage = runs.entry(instance.to_string()).or_default();
        // A negative or NaN cost must not buy back budget.
        if usd.is_finite() && usd > 0.0 {
            usage.cost_usd += usd;
        } else if !usd.is_finite() {
            usage.cost_usd = f64::INFINITY;
        }
        *usage
    }

    pub(crate) fn usage(&self, instance: &str) -> Option<RunUsage> {
        self.usage.lock().ok()?.get(instance).copied()
    }

    pub(crate) fn end(&self, instance: &str) -> Option<RunUsage> {
        self.usage.lock().ok()?.remove(instance)
    }
}

/// The first bound `usage` exceeds at `now`, if any.
pub(crate) fn check(
    envelope: &Envelope,
    usage: RunUsage,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<EnvelopeBreach> {
    if let Some(max) = envelope.max_runtime {
        let ran = now.signed_duration_since(started_at);
        if ran > chrono::Duration::from_std(max).unwrap_or(chrono::Duration::MAX) {
            return Some(EnvelopeBreach {
                bound: EnvelopeBound::MaxRuntime,
                reason: format!(
                    "run exceeded max_runtime of {}s (ran {}s)",
                    max.as_secs(),
                    ran.num_seconds()
                ),
            });
        }
    }
    if let Some(max) = envelope.max_actions
        && usage.actions > max
    {
        return Some(EnvelopeBreach {
            bound: EnvelopeBound::MaxActions,
            reason: format!("run exceeded max_actions of {max}"),
        });
    }
    if let Some(max) = envelope.max_cost_usd
        && usage.cost_usd > max
    {
        return Some(EnvelopeBreach {
            bound: EnvelopeBound::MaxCostUsd,
            reason: format!(
                "run exceeded max_cost_usd of {max:.4} (spent {:.4})",
                usage.cost_usd
            ),
        });
    }
    None
}
