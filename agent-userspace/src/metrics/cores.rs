//! `cordon_proxy_accepted_total{core}`: agent connections each proxy core
//! accepted, so an operator (and the tests) can see the kernel spreads
//! connects over every core's listeners.
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use super::text::{Exposition, Kind};

#[derive(Default)]
pub struct CoreCounts {
    /// One counter per core, each its own allocation so the cores never
    /// write to one cache line.
    accepted: OnceLock<Box<[Arc<AtomicU64>]>>,
}

impl CoreCounts {
    /// The counters of `cores` cores; set once per process image.
    pub fn init(&self, cores: usize) -> Box<[Arc<AtomicU64>]> {
        let made = self
            .accepted
            .get_or_init(|| (0..cores).map(|_| Arc::default()).collect());
        if made.len() != cores {
            tracing::warn!(
                cores,
                counted = made.len(),
                "proxy cores set twice: accepts are counted for the first set only"
            );
        }
        (0..cores)
            .map(|i| made.get(i).cloned().unwrap_or_default())
            .collect()
    }

    pub fn render(&self, e: &mut Exposition) {
        let Some(cores) = self.accepted.get() else {
            return;
        };
        e.family(
            "cordon_proxy_accepted_total",
            "Agent connections accepted, by proxy core.",
            Kind::Counter,
        );
        for (i, n) in cores.iter().enumerate() {
            let core = i.to_string();
            e.sample(
                "cordon_proxy_accepted_total",
                &[("core", &core)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_counts_its_own_accepts() {
        let c = CoreCounts::default();
        let counters = c.init(2);
        counters[1].fetch_add(3, Ordering::Relaxed);
        let mut e = Exposition::new();
        c.render(&mut e);
        let t = e.finish();
        assert!(
            t.contains("cordon_proxy_accepted_total{core=\"0\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("cordon_proxy_accepted_total{core=\"1\"} 3\n"),
            "{t}"
        );
    }
}
