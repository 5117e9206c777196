//! `cordon_outcomes_total{connector,status_class}`: how forwarded exchanges
//! ended, counted when the proxy records each outcome.
use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use super::text::{Exposition, Kind};

/// Label for exchanges without a connector (plain `http.request`, `tcp.connect`).
const NO_CONNECTOR: &str = "none";
/// Connectors are configured, so few; past this many the rest count as `other`.
const MAX_CONNECTORS: usize = 256;

#[derive(Default)]
pub struct OutcomeCounts {
    /// connector -> status class -> count. Classes are `&'static str` from
    /// `cordon_audit::status_class`, so a hit allocates nothing.
    by: RwLock<HashMap<String, HashMap<&'static str, AtomicU64>>>,
}

impl OutcomeCounts {
    pub fn count(&self, connector: Option<&str>, class: &'static str) {
        let connector = connector.unwrap_or(NO_CONNECTOR);
        {
            let map = self.by.read().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get(connector).and_then(|c| c.get(class)) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.by.write().unwrap_or_else(|e| e.into_inner());
        let key = if map.len() >= MAX_CONNECTORS && !map.contains_key(connector) {
            "other"
        } else {
            connector
        };
        map.entry(key.to_string())
            .or_default()
            .entry(class)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, e: &mut Exposition) {
        e.family(
            "cordon_outcomes_total",
            "Forwarded exchanges that ended, by connector and status class.",
            Kind::Counter,
        );
        let map = self.by.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(&str, &str, u64)> = map
            .iter()
            .flat_map(|(c, classes)| {
                classes
                    .iter()
                    .map(move |(k, n)| (c.as_str(), *k, n.load(Ordering::Relaxed)))
            })
            .collect();
        rows.sort();
        for (connector, class, n) in rows {
            let labels = [("connector", connector), ("status_class", class)];
            e.sample("cordon_outcomes_total", &labels, n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cordon_audit::{Outcome, OutcomeState};

    use super::super::Metrics;
    use super::*;

    #[test]
    fn outcomes_are_counted_by_connector_and_status_class() {
        let m = Metrics::default();
        let done = |connector: Option<&str>, status: Option<u16>, state| Outcome {
            connector: connector.map(str::to_string),
            status,
            duration: Some(Duration::from_millis(5)),
            ..Outcome::new(1, state)
        };
        m.record_outcome(&done(Some("github"), Some(201), OutcomeState::Completed));
        m.record_outcome(&done(Some("github"), Some(200), OutcomeState::Completed));
        m.record_outcome(&done(Some("github"), Some(404), OutcomeState::Completed));
        m.record_outcome(&done(None, None, OutcomeState::Failed));
        let mut e = Exposition::new();
        m.render(&mut e);
        let t = e.finish();
        for line in [
            "# TYPE cordon_outcomes_total counter\n",
            "cordon_outcomes_total{connector=\"github\",status_class=\"2xx\"} 2\n",
            "cordon_outcomes_total{connector=\"github\",status_class=\"4xx\"} 1\n",
            "cordon_outcomes_total{connector=\"none\",status_class=\"failed\"} 1\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
    }
}
