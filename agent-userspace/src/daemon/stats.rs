//! Per-run counters for `cordon ps`.
use std::{collections::HashMap, sync::Mutex};

use crate::cgroup::AgentPath;

/// Keyed by the run's path itself: counted on every decision, and a key
/// text (`run_id`) was a string built per request only to find the entry.
#[derive(Default)]
pub struct Stats {
    runs: Mutex<HashMap<AgentPath, (u64, u64)>>,
}

impl Stats {
    pub fn count(&self, agent: &AgentPath, allowed: bool) {
        let mut m = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let e = match m.get_mut(agent) {
            Some(e) => e,
            None => m.entry(agent.clone()).or_default(),
        };
        if allowed { e.0 += 1 } else { e.1 += 1 }
    }

    /// (allowed, denied) so far.
    pub fn get(&self, agent: &AgentPath) -> (u64, u64) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(agent)
            .copied()
            .unwrap_or_default()
    }
}
