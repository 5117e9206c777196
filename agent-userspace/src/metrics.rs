//! Prometheus metrics. The proxy records into the process-wide registry
//! (`metrics::global()`), cheaply enough to call once per request:
//!
//! ```ignore
//! let m = crate::metrics::global();
//! m.record_request(agent, action, cordon_audit::Decision::Deny); // cordon_requests_total
//! m.observe_decision(decided_at - started);                       // policy time
//! m.observe_upstream(upstream_elapsed);                           // upstream round trip
//! m.record_outcome(&outcome);  // an exchange ended: cordon_outcomes_total{connector,status_class}
//! ```
//!
//! Gauges (pending approvals, agents by state, audit queue and health) are
//! read from the daemon at scrape time; `serve::spawn` starts the HTTP
//! endpoint when `metrics_addr` is configured.
mod caps;
mod cores;
mod histogram;
mod outcomes;
pub mod serve;
pub mod text;

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use cordon_audit::Decision;

pub use histogram::Histogram;
pub use serve::spawn;
use text::{Exposition, Kind};

/// Distinct (agent, action) pairs kept before new ones are folded into
/// `action="other"`, so a misbehaving agent cannot grow the scrape without bound.
const MAX_SERIES: usize = 5_000;
const OVERFLOW_ACTION: &str = "other";

/// Decision time is policy evaluation: microseconds to a few milliseconds.
const DECISION_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];
/// Upstream time is a network round trip: milliseconds to tens of seconds.
const UPSTREAM_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// allow / deny / pending counters of one (agent, action).
type DecisionCounts = Arc<[AtomicU64; 3]>;

pub struct Metrics {
    /// agent -> action -> counts. Nested so a lookup borrows the caller's
    /// strings instead of allocating a key.
    requests: RwLock<HashMap<String, HashMap<String, DecisionCounts>>>,
    series: AtomicU64,
    decision_latency: Histogram,
    upstream_latency: Histogram,
    outcomes: outcomes::OutcomeCounts,
    caps: caps::CapCounts,
    cores: cores::CoreCounts,
    /// The `[audit.forward]` forwarder's counters, once it runs.
    forward: OnceLock<Arc<cordon_audit::forward::ForwardStats>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: RwLock::new(HashMap::new()),
            series: AtomicU64::new(0),
            decision_latency: Histogram::new(&DECISION_BUCKETS),
            upstream_latency: Histogram::new(&UPSTREAM_BUCKETS),
            outcomes: Default::default(),
            caps: Default::default(),
            cores: Default::default(),
            forward: OnceLock::new(),
        }
    }
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// The daemon's registry.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::default)
}

fn slot(d: Decision) -> usize {
    match d {
        Decision::Allow => 0,
        Decision::Deny => 1,
        Decision::Pending => 2,
    }
}

const DECISIONS: [Decision; 3] = [Decision::Allow, Decision::Deny, Decision::Pending];

impl Metrics {
    /// One decided request: `cordon_requests_total{agent,action,decision}`.
    // Called from the proxy's decision path.
    pub fn record_request(&self, agent: &str, action: &str, decision: Decision) {
        self.counts(agent, action)[slot(decision)].fetch_add(1, Ordering::Relaxed);
    }

    /// Time from request parsed to policy decided.
    pub fn observe_decision(&self, d: Duration) {
        self.decision_latency.observe(d.as_secs_f64());
    }

    /// Time the upstream took to answer (connect to response head).
    pub fn observe_upstream(&self, d: Duration) {
        self.upstream_latency.observe(d.as_secs_f64());
    }

    /// One ended exchange: `cordon_outcomes_total{connector,status_class}`
    /// (`2xx`..`5xx` by the upstream status, else `failed`/`aborted`/
    /// `unknown`, or `none` for a completed flow without one).
    pub fn record_outcome(&self, outcome: &cordon_audit::Outcome) {
        self.outcomes
            .count(outcome.connector.as_deref(), outcome.status_class());
    }

    /// Several at once: the `aborted`/`unknown` outcomes a start gave the
    /// decisions the last run left open.
    pub fn record_outcomes(&self, outcomes: &[cordon_audit::Outcome]) {
        for o in outcomes {
            self.record_outcome(o);
        }
    }

    /// One refusal by a per-agent cap; `opens_burst` when it is the one
    /// the trail records (`cordon_cap_refusals_total`, `_bursts_total`).
    pub fn record_cap_refusal(
        &self,
        agent: &str,
        cap: crate::request::caps::Cap,
        opens_burst: bool,
    ) {
        self.caps.count(agent, cap, opens_burst);
    }

    /// The accept counters of `cores` proxy cores
    /// (`cordon_proxy_accepted_total{core}`), one for each core to bump.
    pub fn proxy_cores(&self, cores: usize) -> Box<[Arc<AtomicU64>]> {
        self.cores.init(cores)
    }

    /// Publishes the forwarder's counters (`cordon_audit_forward_*`).
    pub fn watch_forwarder(&self, stats: Arc<cordon_audit::forward::ForwardStats>) {
        if self.forward.set(stats).is_err() {
            tracing::warn!("a second audit forwarder's metrics are not published");
        }
    }

    /// The forwarder's counters now, when one runs.
    pub fn forwarder(&self) -> Option<cordon_audit::forward::ForwardSnapshot> {
        self.forward.get().map(|s| s.snapshot())
    }

    fn counts(&self, agent: &str, action: &str) -> DecisionCounts {
        {
            let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = map.get(agent).and_then(|a| a.get(action)) {
                return c.clone();
            }
        }
        let mut map = self.requests.write().unwrap_or_else(|e| e.into_inner());
        let full = self.series.load(Ordering::Relaxed) as usize >= MAX_SERIES;
        let actions = map.entry(agent.to_string()).or_default();
        let key = if full && !actions.contains_key(action) {
            OVERFLOW_ACTION
        } else {
            action
        };
        actions
            .entry(key.to_string())
            .or_insert_with(|| {
                self.series.fetch_add(1, Ordering::Relaxed);
                Arc::new(Default::default())
            })
            .clone()
    }

    /// The families recorded here (not the scrape-time gauges).
    pub fn render(&self, e: &mut Exposition) {
        e.family(
            "cordon_requests_total",
            "Requests decided, by agent, action and decision.",
            Kind::Counter,
        );
        let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(&str, &str, &DecisionCounts)> = map
            .iter()
            .flat_map(|(agent, actions)| {
                actions
                    .iter()
                    .map(move |(action, c)| (agent.as_str(), action.as_str(), c))
            })
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (agent, action, counts) in rows {
            for d in DECISIONS {
                let n = counts[slot(d)].load(Ordering::Relaxed);
                if n > 0 {
                    let labels = [
                        ("agent", agent),
                        ("action", action),
                        ("decision", d.as_str()),
                    ];
                    e.sample("cordon_requests_total", &labels, n as f64);
                }
            }
        }
        drop(map);
        self.decision_latency.render(
            e,
            "cordon_decision_latency_seconds",
            "Time to decide a request (policy evaluation).",
        );
        self.upstream_latency.render(
            e,
            "cordon_upstream_latency_seconds",
            "Time the upstream took to answer a forwarded request.",
        );
        self.outcomes.render(e);
        self.caps.render(e);
        self.cores.render(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut e = Exposition::new();
        m.render(&mut e);
        e.finish()
    }

    #[test]
    fn requests_are_counted_per_agent_action_and_decision() {
        let m = Metrics::default();
        m.record_request("bot", "github.pr.read", Decision::Allow);
        m.record_request("bot", "github.pr.read", Decision::Allow);
        m.record_request("bot", "github.branch.delete", Decision::Deny);
        let t = text(&m);
        assert!(t.contains(
            "cordon_requests_total{agent=\"bot\",action=\"github.pr.read\",decision=\"allow\"} 2\n"
        ));
        assert!(t.contains(
            "cordon_requests_total{agent=\"bot\",action=\"github.branch.delete\",decision=\"deny\"} 1\n"
        ));
        assert!(!t.contains("decision=\"pending\""), "{t}");
    }

    #[test]
    fn new_series_past_the_cap_fold_into_other() {
        let m = Metrics::default();
        m.series.store(MAX_SERIES as u64, Ordering::Relaxed);
        m.record_request("bot", "a.b.one", Decision::Deny);
        m.record_request("bot", "a.b.two", Decision::Deny);
        let t = text(&m);
        assert!(t.contains("action=\"other\",decision=\"deny\"} 2\n"), "{t}");
        assert!(!t.contains("a.b.one"));
    }

    #[test]
    fn latencies_land_in_their_histograms() {
        let m = Metrics::default();
        m.observe_decision(Duration::from_micros(80));
        m.observe_upstream(Duration::from_millis(300));
        let t = text(&m);
        assert!(t.contains("cordon_decision_latency_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(t.contains("cordon_decision_latency_seconds_bucket{le=\"0.00005\"} 0\n"));
        assert!(t.contains("cordon_upstream_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(t.contains("cordon_upstream_latency_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(t.contains("cordon_upstream_latency_seconds_count 1\n"));
    }
}
