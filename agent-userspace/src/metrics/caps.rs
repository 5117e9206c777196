//! `cordon_cap_refusals_total{agent,cap}` and `cordon_cap_bursts_total
//! {agent,cap}`: refusals by the per-agent caps, counted one by one (the
//! trail records them once per burst), and the bursts they came in.
use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use super::text::{Exposition, Kind};
use crate::request::caps::Cap;

/// Agents past this many are counted as `other`: a cap refusal must not
/// itself grow the scrape without bound.
const MAX_AGENTS: usize = 1_000;

type Row = [[AtomicU64; 2]; Cap::ALL.len()];

#[derive(Default)]
pub struct CapCounts {
    /// agent -> cap -> (refusals, bursts).
    by: RwLock<HashMap<String, Box<Row>>>,
}

fn slot(cap: Cap) -> usize {
    Cap::ALL.iter().position(|c| *c == cap).unwrap_or(0)
}

impl CapCounts {
    pub fn count(&self, agent: &str, cap: Cap, opens_burst: bool) {
        let add = |row: &Row| {
            row[slot(cap)][0].fetch_add(1, Ordering::Relaxed);
            if opens_burst {
                row[slot(cap)][1].fetch_add(1, Ordering::Relaxed);
            }
        };
        {
            let map = self.by.read().unwrap_or_else(|e| e.into_inner());
            if let Some(row) = map.get(agent) {
                return add(row);
            }
        }
        let mut map = self.by.write().unwrap_or_else(|e| e.into_inner());
        let key = if map.len() >= MAX_AGENTS && !map.contains_key(agent) {
            "other"
        } else {
            agent
        };
        add(map.entry(key.to_string()).or_default());
    }

    pub fn render(&self, e: &mut Exposition) {
        let map = self.by.read().unwrap_or_else(|e| e.into_inner());
        let mut agents: Vec<&String> = map.keys().collect();
        agents.sort();
        for (i, (name, help)) in [
            (
                "cordon_cap_refusals_total",
                "Connections, queries and requests refused by a per-agent cap, by agent and cap.",
            ),
            (
                "cordon_cap_bursts_total",
                "Bursts of cap refusals (each recorded once in the trail), by agent and cap.",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            e.family(name, help, Kind::Counter);
            for agent in &agents {
                for cap in Cap::ALL {
                    let n = map[*agent][slot(cap)][i].load(Ordering::Relaxed);
                    if n > 0 {
                        e.sample(name, &[("agent", agent), ("cap", cap.name())], n as f64);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

    #[test]
    fn refusals_and_bursts_are_counted_per_agent_and_cap() {
        let m = Metrics::default();
        m.record_cap_refusal("flood", Cap::Connections, true);
        for _ in 0..4 {
            m.record_cap_refusal("flood", Cap::Connections, false);
        }
        m.record_cap_refusal("flood", Cap::DnsRate, true);
        let mut e = Exposition::new();
        m.render(&mut e);
        let t = e.finish();
        for line in [
            "# TYPE cordon_cap_refusals_total counter\n",
            "cordon_cap_refusals_total{agent=\"flood\",cap=\"connections\"} 5\n",
            "cordon_cap_bursts_total{agent=\"flood\",cap=\"connections\"} 1\n",
            "cordon_cap_refusals_total{agent=\"flood\",cap=\"dns_queries_per_second\"} 1\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("pending_approvals"), "{t}");
    }
}
