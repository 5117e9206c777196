//! Coalescing a cap's refusals into bursts, so a flood of thousands of
//! refused connections is two records rather than thousands: the first
//! refusal opens a burst (recorded on its own), the rest are counted, and
//! one summary record carries the count when the burst ends (no refusal
//! for `QUIET`) or, while it goes on, every `EVERY`. Pure: time is passed in.
use std::time::{Duration, Instant};

/// A burst ends after this long without a refusal.
pub const QUIET: Duration = Duration::from_secs(2);
/// A burst that goes on is summed up this often.
pub const EVERY: Duration = Duration::from_secs(30);

/// One cap's burst for one agent.
#[derive(Clone, Debug, Default)]
pub struct Burst {
    open: Option<Open>,
}

#[derive(Clone, Debug)]
struct Open {
    since: Instant,
    last: Instant,
    /// When the last summary covered up to.
    summed_at: Instant,
    /// Refusals since the burst opened (the first included).
    total: u64,
    /// Refusals not yet in any record.
    unreported: u64,
}

/// What a refusal means for the trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// The first of a burst: record it.
    Opens,
    /// Counted for the summary.
    Counted,
}

/// A summary record's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Refusals this summary covers (not recorded on their own).
    pub refused: u64,
    /// Every refusal since the burst opened.
    pub total: u64,
    pub lasted: Duration,
    /// False while the burst goes on (an interim summary).
    pub ended: bool,
}

impl Summary {
    /// How a summary's reason says it: the burst ended, or goes on.
    pub fn state(&self) -> &'static str {
        if self.ended { "ended" } else { "continues" }
    }

    /// The burst's own params in a summary record: its total, how long it
    /// lasted and whether it ended (the count it covers is named by the
    /// caller: refusals, probes).
    pub fn insert_params(&self, params: &mut serde_json::Map<String, serde_json::Value>) {
        params.insert("burst_total".into(), self.total.into());
        params.insert("burst_ms".into(), (self.lasted.as_millis() as u64).into());
        params.insert("ended".into(), self.ended.into());
    }
}

impl Burst {
    pub fn hit(&mut self, now: Instant) -> Hit {
        match &mut self.open {
            Some(o) => {
                o.last = now;
                o.total += 1;
                o.unreported += 1;
                Hit::Counted
            }
            None => {
                self.open = Some(Open {
                    since: now,
                    last: now,
                    summed_at: now,
                    total: 1,
                    unreported: 0,
                });
                Hit::Opens
            }
        }
    }

    /// The summary due at `now`, if any: the burst ended, or it goes on and
    /// `EVERY` passed since the last. A burst of one refusal ends without a
    /// summary (its own record says everything).
    pub fn tick(&mut self, now: Instant) -> Option<Summary> {
        let o = self.open.as_mut()?;
        let ended = now.saturating_duration_since(o.last) >= QUIET;
        let due = now.saturating_duration_since(o.summed_at) >= EVERY;
        if !ended && !due {
            return None;
        }
        let summary = (o.unreported > 0).then_some(Summary {
            refused: o.unreported,
            total: o.total,
            lasted: o.last.saturating_duration_since(o.since),
            ended,
        });
        if ended {
            self.open = None;
        } else {
            o.unreported = 0;
            o.summed_at = now;
        }
        summary
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_flood_is_one_opening_and_one_summary_with_the_count() {
        let t0 = Instant::now();
        let mut b = Burst::default();
        assert_eq!(b.hit(t0), Hit::Opens);
        for i in 1..3_000u64 {
            assert_eq!(b.hit(t0 + ms(i / 10)), Hit::Counted);
        }
        let last = t0 + ms(299);
        assert_eq!(b.tick(last + ms(100)), None, "still going");
        let s = b.tick(last + QUIET).expect("a summary when the burst ends");
        assert_eq!(
            s,
            Summary {
                refused: 2_999,
                total: 3_000,
                lasted: ms(299),
                ended: true
            }
        );
        assert!(!b.is_open());
        assert_eq!(b.tick(last + QUIET * 2), None, "nothing more");
        // The next refusal opens a new burst.
        assert_eq!(b.hit(last + QUIET * 3), Hit::Opens);
    }

    #[test]
    fn a_single_refusal_needs_no_summary() {
        let t0 = Instant::now();
        let mut b = Burst::default();
        assert_eq!(b.hit(t0), Hit::Opens);
        assert_eq!(b.tick(t0 + QUIET), None);
        assert!(!b.is_open());
    }

    #[test]
    fn a_long_burst_is_summed_up_every_period_and_at_its_end() {
        let t0 = Instant::now();
        let mut b = Burst::default();
        b.hit(t0);
        let mut t = t0;
        let mut summaries = Vec::new();
        // A refusal every 100 ms for 65 s, ticked every second.
        for step in 1..=650u64 {
            t = t0 + ms(step * 100);
            b.hit(t);
            if step % 10 == 0 {
                summaries.extend(b.tick(t));
            }
        }
        summaries.extend(b.tick(t + QUIET));
        assert_eq!(summaries.len(), 3, "{summaries:?}");
        assert!(!summaries[0].ended && !summaries[1].ended && summaries[2].ended);
        let counted: u64 = summaries.iter().map(|s| s.refused).sum();
        assert_eq!(counted, 650, "every refusal after the first, once");
        assert_eq!(summaries[2].total, 651);
    }
}
