//! What one agent instance holds against its caps: connections, pending
//! approvals and request bytes held now, its two token buckets, and one
//! burst per cap. Pure: limits and time are passed in, and the caller
//! (`Caps`) holds the lock and turns results into permits and records.
use std::time::Instant;

use super::{
    bucket::Bucket,
    burst::{Burst, Hit, Summary},
    limits::{BURST_SECS, Limits},
};
use crate::request::caps::Cap;

#[derive(Debug, Default)]
pub struct Ledger {
    pub connections: u64,
    pub pending_approvals: u64,
    pub request_bytes: u64,
    conn_rate: Option<Bucket>,
    dns_rate: Option<Bucket>,
    bursts: [Burst; Cap::ALL.len()],
}

fn slot(cap: Cap) -> usize {
    Cap::ALL.iter().position(|c| *c == cap).unwrap_or(0)
}

/// Takes a token from `bucket`, creating it full on first use.
fn take(bucket: &mut Option<Bucket>, rate: u64, now: Instant) -> bool {
    let burst = rate.saturating_mul(BURST_SECS);
    bucket
        .get_or_insert_with(|| Bucket::full(burst, now))
        .take(rate, burst, now)
}

impl Ledger {
    /// A new connection: within the concurrency cap, then the rate.
    pub fn connect(&mut self, l: &Limits, now: Instant) -> Result<(), Cap> {
        if self.connections >= l.connections {
            return Err(Cap::Connections);
        }
        if !take(&mut self.conn_rate, l.connections_per_second, now) {
            return Err(Cap::ConnectionRate);
        }
        self.connections += 1;
        Ok(())
    }

    pub fn disconnect(&mut self) {
        self.connections = self.connections.saturating_sub(1);
    }

    pub fn dns_query(&mut self, l: &Limits, now: Instant) -> Result<(), Cap> {
        if take(&mut self.dns_rate, l.dns_queries_per_second, now) {
            Ok(())
        } else {
            Err(Cap::DnsRate)
        }
    }

    pub fn open_approval(&mut self, l: &Limits) -> Result<(), Cap> {
        if self.pending_approvals >= l.pending_approvals {
            return Err(Cap::PendingApprovals);
        }
        self.pending_approvals += 1;
        Ok(())
    }

    pub fn close_approval(&mut self) {
        self.pending_approvals = self.pending_approvals.saturating_sub(1);
    }

    /// `n` more request bytes in flight. A request larger than the whole
    /// cap is refused too: it could never fit.
    pub fn take_bytes(&mut self, n: u64, l: &Limits) -> Result<(), Cap> {
        if self.request_bytes.saturating_add(n) > l.request_bytes_in_flight {
            return Err(Cap::RequestBytes);
        }
        self.request_bytes += n;
        Ok(())
    }

    pub fn give_bytes(&mut self, n: u64) {
        self.request_bytes = self.request_bytes.saturating_sub(n);
    }

    /// A refusal under `cap`: whether it opens a burst.
    pub fn refused(&mut self, cap: Cap, now: Instant) -> Hit {
        self.bursts[slot(cap)].hit(now)
    }

    /// The summaries due at `now`, one per cap whose burst ended or is due.
    pub fn summaries(&mut self, now: Instant) -> Vec<(Cap, Summary)> {
        Cap::ALL
            .iter()
            .filter_map(|&cap| self.bursts[slot(cap)].tick(now).map(|s| (cap, s)))
            .collect()
    }

    /// Holds nothing a fresh ledger would not: it can be forgotten.
    pub fn is_idle(&self, l: &Limits, now: Instant) -> bool {
        let full = |b: &Option<Bucket>, rate: u64| {
            b.as_ref()
                .is_none_or(|b| b.is_full(rate, rate.saturating_mul(BURST_SECS), now))
        };
        self.connections == 0
            && self.pending_approvals == 0
            && self.request_bytes == 0
            && full(&self.conn_rate, l.connections_per_second)
            && full(&self.dns_rate, l.dns_queries_per_second)
            && self.bursts.iter().all(|b| !b.is_open())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::CapDefaults;
    use cordon_policy::CapOverrides;

    fn limits(f: impl FnOnce(&mut CapOverrides)) -> Limits {
        let mut p = CapOverrides::default();
        f(&mut p);
        Limits::resolve(&CapDefaults::default(), &p, u64::MAX)
    }

    #[test]
    fn connections_are_held_up_to_the_cap_and_released() {
        let l = limits(|p| p.connections = Some(2));
        let now = Instant::now();
        let mut g = Ledger::default();
        assert_eq!(g.connect(&l, now), Ok(()));
        assert_eq!(g.connect(&l, now), Ok(()));
        assert_eq!(g.connect(&l, now), Err(Cap::Connections));
        g.disconnect();
        assert_eq!(g.connect(&l, now), Ok(()));
        assert_eq!(g.connections, 2);
    }

    #[test]
    fn new_connections_are_held_to_the_rate_with_a_burst_of_two_seconds() {
        let l = limits(|p| p.connections_per_second = Some(5));
        let t0 = Instant::now();
        let mut g = Ledger::default();
        for _ in 0..10 {
            assert_eq!(g.connect(&l, t0), Ok(()));
            g.disconnect();
        }
        assert_eq!(g.connect(&l, t0), Err(Cap::ConnectionRate));
        // Refused connections hold nothing.
        assert_eq!(g.connections, 0);
        assert_eq!(g.connect(&l, t0 + Duration::from_millis(200)), Ok(()));
    }

    #[test]
    fn dns_queries_are_held_to_their_own_rate() {
        let l = limits(|p| p.dns_queries_per_second = Some(1));
        let t0 = Instant::now();
        let mut g = Ledger::default();
        assert!(g.dns_query(&l, t0).is_ok() && g.dns_query(&l, t0).is_ok());
        assert_eq!(g.dns_query(&l, t0), Err(Cap::DnsRate));
        // The connection bucket is separate.
        assert_eq!(g.connect(&l, t0), Ok(()));
    }

    #[test]
    fn approvals_and_bytes_are_held_and_given_back() {
        let l = limits(|p| {
            p.pending_approvals = Some(1);
            p.request_bytes_in_flight = Some(100);
        });
        let mut g = Ledger::default();
        assert_eq!(g.open_approval(&l), Ok(()));
        assert_eq!(g.open_approval(&l), Err(Cap::PendingApprovals));
        g.close_approval();
        assert_eq!(g.open_approval(&l), Ok(()));
        assert_eq!(g.take_bytes(60, &l), Ok(()));
        assert_eq!(g.take_bytes(41, &l), Err(Cap::RequestBytes));
        assert_eq!(g.take_bytes(40, &l), Ok(()));
        g.give_bytes(100);
        assert_eq!(
            g.take_bytes(101, &l),
            Err(Cap::RequestBytes),
            "larger than the cap"
        );
    }

    #[test]
    fn each_cap_has_its_own_burst_and_an_idle_ledger_can_be_forgotten() {
        let l = limits(|_| {});
        let t0 = Instant::now();
        let mut g = Ledger::default();
        assert!(g.is_idle(&l, t0));
        assert_eq!(g.refused(Cap::Connections, t0), Hit::Opens);
        assert_eq!(g.refused(Cap::Connections, t0), Hit::Counted);
        assert_eq!(g.refused(Cap::DnsRate, t0), Hit::Opens);
        assert!(!g.is_idle(&l, t0));
        let later = t0 + super::super::burst::QUIET;
        let s = g.summaries(later);
        assert_eq!(s.len(), 1, "the DNS burst of one needs no summary: {s:?}");
        assert_eq!((s[0].0, s[0].1.refused), (Cap::Connections, 1));
        assert!(g.is_idle(&l, later));
    }
}
