//! When a forwarded record counts as delivered.
//!
//! Syslog over TCP has no application acknowledgement, so "written to the socket" is not
//! "received": a collector that stops drops what sits in its socket buffer and in its queues.
//! A record counts as delivered (and the persisted cursor moves past it) once
//!
//! 1. the collector's TCP stack acknowledged every byte of it (the kernel's unacknowledged
//!    send queue, `SIOCOUTQ`, has drained past its last byte), and
//! 2. the connection then stayed up for `grace` (a running collector reads and writes out a
//!    record in far less; one that dies within the grace gets the record again).
//!
//! Anything not yet delivered when a connection fails is sent again on the next one: at
//! least once, with duplicates only for records of that last window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct AckTracker {
    grace: Duration,
    /// (socket byte offset just past the record's last byte, seq), oldest first.
    sent: VecDeque<(u64, u64)>,
    /// (when the peer had acknowledged it, seq), oldest first.
    acked: VecDeque<(Instant, u64)>,
    delivered: u64,
}

impl AckTracker {
    /// `delivered`: the cursor this connection starts from.
    pub fn new(delivered: u64, grace: Duration) -> AckTracker {
        AckTracker {
            grace,
            sent: VecDeque::new(),
            acked: VecDeque::new(),
            delivered,
        }
    }

    /// Records up to `seq` are written to the socket, ending at byte `end` of the connection.
    pub fn sent(&mut self, end: u64, seq: u64) {
        self.sent.push_back((end, seq));
    }

    /// The peer's TCP stack has acknowledged the first `acked_bytes` bytes.
    pub fn peer_acked(&mut self, acked_bytes: u64, now: Instant) {
        while let Some(&(end, seq)) = self.sent.front() {
            if end > acked_bytes {
                break;
            }
            self.sent.pop_front();
            self.acked.push_back((now, seq));
        }
    }

    /// Moves the delivered mark past records acknowledged at least `grace` ago; returns it.
    pub fn settle(&mut self, now: Instant) -> u64 {
        while let Some(&(at, seq)) = self.acked.front() {
            if now.saturating_duration_since(at) < self.grace {
                break;
            }
            self.acked.pop_front();
            self.delivered = self.delivered.max(seq);
        }
        self.delivered
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether everything written is delivered (nothing would be sent twice after a failure).
    pub fn is_idle(&self) -> bool {
        self.sent.is_empty() && self.acked.is_empty()
    }

    /// When the oldest acknowledged record becomes delivered.
    pub fn next_settle(&self) -> Option<Instant> {
        self.acked.front().map(|(at, _)| *at + self.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    #[test]
    fn a_record_is_delivered_only_once_acknowledged_and_the_grace_has_passed() {
        let t0 = Instant::now();
        let mut t = AckTracker::new(10, GRACE);
        t.sent(100, 11);
        t.sent(250, 14);
        assert_eq!(t.settle(t0 + GRACE * 10), 10, "written is not delivered");
        t.peer_acked(120, t0);
        assert_eq!(
            t.settle(t0 + GRACE / 2),
            10,
            "acknowledged but within the grace"
        );
        assert_eq!(t.settle(t0 + GRACE), 11);
        t.peer_acked(250, t0 + GRACE);
        assert!(!t.is_idle());
        assert_eq!(t.next_settle(), Some(t0 + GRACE * 2));
        assert_eq!(t.settle(t0 + GRACE * 2), 14);
        assert!(t.is_idle());
    }

    #[test]
    fn a_partly_acknowledged_record_is_not_delivered() {
        let t0 = Instant::now();
        let mut t = AckTracker::new(0, GRACE);
        t.sent(100, 1);
        t.peer_acked(99, t0);
        assert_eq!(t.settle(t0 + GRACE * 5), 0);
    }

    #[test]
    fn the_mark_never_moves_back() {
        let t0 = Instant::now();
        let mut t = AckTracker::new(50, GRACE);
        t.sent(10, 3);
        t.peer_acked(10, t0);
        assert_eq!(t.settle(t0 + GRACE), 50);
    }
}
