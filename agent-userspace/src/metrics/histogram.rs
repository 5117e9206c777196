//! A fixed-bucket histogram of seconds: one atomic add per bucket hit, the
//! sum kept in nanoseconds so recording never takes a lock.
use std::sync::atomic::{AtomicU64, Ordering};

use super::text::{Exposition, Kind, format_value};

pub struct Histogram {
    /// Upper bounds in seconds, ascending.
    bounds: Vec<f64>,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// `NAME_bucket{le=..}` (cumulative), `NAME_sum`, `NAME_count`.
    pub fn render(&self, e: &mut Exposition, name: &str, help: &str) {
        e.family(name, help, Kind::Histogram);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format_value(*b));
            e.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        e.sample(&format!("{name}_sum"), &[], sum);
        e.sample(&format!("{name}_count"), &[], cumulative as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(h: &Histogram) -> String {
        let mut e = Exposition::new();
        h.render(&mut e, "h", "help");
        e.finish()
    }

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(0.5);
        h.observe(7.0);
        let t = rendered(&h);
        assert!(t.contains("h_bucket{le=\"0.1\"} 1\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"1\"} 3\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"+Inf\"} 4\n"), "{t}");
        assert!(t.contains("h_count 4\n"), "{t}");
        assert!(t.contains("h_sum 8.05\n"), "{t}");
    }

    #[test]
    fn a_value_on_a_bound_belongs_to_that_bucket() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.1);
        assert!(rendered(&h).contains("h_bucket{le=\"0.1\"} 1\n"));
    }

    #[test]
    fn nonsense_observations_count_as_zero() {
        let h = Histogram::new(&[0.1]);
        h.observe(f64::NAN);
        h.observe(-3.0);
        let t = rendered(&h);
        assert!(t.contains("h_bucket{le=\"0.1\"} 2\n"), "{t}");
        assert!(t.contains("h_sum 0\n"), "{t}");
    }
}
