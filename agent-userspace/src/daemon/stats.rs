//! Per-run counters for `cordon ps`.
use std::{collections::HashMap, sync::Mutex};

use crate::cgroup::AgentPath;

#[derive(Default)]
pub struct Stats {
    runs: Mutex<HashMap<String, (u64, u64)>>,
}

impl Stats {
    pub fn count(&self, agent: &AgentPath, allowed: bool) {
        let mut m = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(super::decide::run_id(agent)).or_default();
        if allowed { e.0 += 1 } else { e.1 += 1 }
    }

    /// (allowed, denied) so far.
    pub fn get(&self, agent: &AgentPath) -> (u64, u64) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&super::decide::run_id(agent))
            .copied()
            .unwrap_or_default()
    }
}
