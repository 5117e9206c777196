//! Sliding-window rate limits per (agent, limit).
//!
//! Each window keeps the times of the admitted actions within `per`, so
//! the count is exact at the boundary: with `max = 30, per = "1m"` the 31st
//! action within any minute is refused. Refused actions are not recorded,
//! so an agent that backs off gets through again once the window slides.

use crate::agent::AgentPolicy;
use crate::compile::{Limit, OnExceed};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Admitted action times per limit id, per agent.
type Windows = HashMap<String, HashMap<Arc<str>, VecDeque<DateTime<Utc>>>>;

#[derive(Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<Windows>,
}

/// The limit that refused an action, and for which agent of the chain.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) agent: Arc<str>,
    pub(crate) limit: Arc<Limit>,
}

fn severity(on: OnExceed) -> u8 {
    match on {
        OnExceed::Approve => 0,
        OnExceed::Deny => 1,
        OnExceed::Kill => 2,
    }
}

impl RateLimiter {
    /// Checks every limit of every agent that matches `action`; records the
    /// action in all of them only when none refuses (an approve-on-exceed
    /// refusal is recorded too, since the action may still go ahead).
    pub(crate) fn admit(
        &self,
        per_agent: &[(Arc<str>, Arc<AgentPolicy>)],
        action: &str,
        now: DateTime<Utc>,
    ) -> Option<Refusal> {
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic mid-update; refuse rather than guess.
            return per_agent.iter().find_map(|(agent, policy)| {
                policy
                    .limits
                    .iter()
                    .find(|l| l.action.matches(action))
                    .map(|l| Refusal {
                        agent: agent.clone(),
                        limit: l.clone(),
                    })
            });
        };
        let mut worst: Option<Refusal> = None;
        for (agent, policy) in per_agent {
            for limit in policy.limits.iter().filter(|l| l.action.matches(action)) {
                let count = windows
                    .get_mut(agent.as_ref())
                    .and_then(|w| w.get_mut(limit.id.as_ref()))
                    .map_or(0, |times| {
                        prune(times, now, limit.per);
                        times.len()
                    });
                if count >= limit.max as usize
                    && worst
                        .as_ref()
                        .is_none_or(|w| severity(limit.on_exceed) > severity(w.limit.on_exceed))
                {
                    worst = Some(Refusal {
                        agent: agent.clone(),
                        limit: limit.clone(),
                    });
                }
            }
        }
        let record = worst
            .as_ref()
            .is_none_or(|w| w.limit.on_exceed == OnExceed::Approve);
        if record {
            for (agent, policy) in per_agent {
                for limit in policy.limits.iter().filter(|l| l.action.matches(action)) {
                    let per_limit = match windows.get_mut(agent.as_ref()) {
                        Some(m) => m,
                        None => windows.entry(agent.to_string()).or_default(),
                    };
                    per_limit
                        .entry(limit.id.clone())
                        .or_insert_with(VecDeque::new)
                        .push_back(now);
                }
            }
        }
        worst
    }
}

fn prune(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, per: std::time::Duration) {
    let per = chrono::Duration::from_std(per).unwrap_or(chrono::Duration::MAX);
    while let Some(&oldest) = times.front() {
        if now.signed_duration_since(oldest) >= per {
            times.pop_front();
        } else {
            break;
        }
    }
}
