//! A token bucket: `rate` tokens a second, holding at most `burst`. Time is
//! passed in, so the arithmetic is tested without a clock.
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: u64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst as f64,
            at: now,
        }
    }

    /// Takes one token if there is one. A bucket whose cap was lowered
    /// (a reload) is clamped to the new burst first.
    pub fn take(&mut self, rate: u64, burst: u64, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full by `now`: then it holds nothing a
    /// fresh bucket would not, and can be forgotten.
    pub fn is_full(&self, rate: u64, burst: u64, now: Instant) -> bool {
        let mut b = self.clone();
        b.refill(rate, burst, now);
        b.tokens >= burst as f64
    }

    fn refill(&mut self, rate: u64, burst: u64, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * rate as f64).min(burst as f64);
        self.at = now.max(self.at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_bucket_gives_its_burst_then_refuses() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3, t0);
        assert!((0..3).all(|_| b.take(1, 3, t0)));
        assert!(!b.take(1, 3, t0));
    }

    #[test]
    fn tokens_come_back_at_the_rate_and_never_past_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::full(2, t0);
        assert!(b.take(10, 2, t0) && b.take(10, 2, t0));
        assert!(!b.take(10, 2, t0));
        // 10 a second: one token after 100 ms.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(10, 2, t1));
        assert!(!b.take(10, 2, t1));
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert!(b.is_full(10, 2, t2));
        assert!(b.take(10, 2, t2) && b.take(10, 2, t2));
        assert!(!b.take(10, 2, t2));
    }

    #[test]
    fn a_lowered_burst_clamps_what_the_bucket_holds() {
        let t0 = Instant::now();
        let mut b = Bucket::full(100, t0);
        assert!(b.take(1, 1, t0));
        assert!(!b.take(1, 1, t0));
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::full(1, t0);
        assert!(b.take(1, 1, t0));
        assert!(!b.take(1, 1, t0 - Duration::from_secs(5)));
    }
}
