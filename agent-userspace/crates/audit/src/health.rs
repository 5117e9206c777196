//! State shared between the submitting handles and the writer thread: health, queue depth and
//! the counters the daemon publishes as metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::record::format_ts;

/// What `AuditLog::health()` reports, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `shutdown()` ran or every handle was dropped.
    Closed,
    /// A commit failed; appends are refused until the writer's retry succeeds.
    Failed {
        reason: String,
        since: DateTime<Utc>,
    },
    /// The queue is full; appends are refused until the writer catches up.
    Saturated {
        depth: usize,
        capacity: usize,
    },
    Healthy,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }
}

/// A snapshot of the writer's counters (monotonic `_total`s, gauges otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditMetrics {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub appended_total: u64,
    pub committed_total: u64,
    /// Transactions committed (committed_total / commits_total = mean group size).
    pub commits_total: u64,
    /// `fdatasync`s of the write-ahead log (outcome-only groups share the next one).
    pub wal_syncs_total: u64,
    pub commit_failures_total: u64,
    pub rejected_queue_full_total: u64,
    pub rejected_unavailable_total: u64,
    pub pruned_total: u64,
    pub last_committed_seq: u64,
    pub last_batch_size: u64,
    pub last_commit_duration_us: u64,
    /// Outcome records that could not be queued (their decisions are marked at next start).
    pub outcomes_unrecorded_total: u64,
    /// Times an appender woke the parked writer thread (a strict group's sync, the first
    /// record of a quiet spell, a filling log): far fewer than records under load.
    pub writer_wakeups_total: u64,
    /// Strict syncs the writer held back to gather a larger group (`sync_pace`).
    pub syncs_paced_total: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appended: AtomicU64,
    pub committed: AtomicU64,
    pub commits: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub commit_failures: AtomicU64,
    pub rejected_full: AtomicU64,
    pub rejected_unavailable: AtomicU64,
    pub pruned: AtomicU64,
    pub last_batch: AtomicU64,
    pub last_commit_us: AtomicU64,
    pub outcomes_unrecorded: AtomicU64,
    pub writer_wakeups: AtomicU64,
    pub syncs_paced: AtomicU64,
}

pub(crate) struct Shared {
    pub capacity: usize,
    pub depth: AtomicUsize,
    pub closed: AtomicBool,
    failure: Mutex<Option<(String, DateTime<Utc>)>>,
    pub counters: Counters,
    /// Last committed seq; `subscribe()` hands out receivers (for `audit tail -f`).
    pub committed_seq: watch::Sender<u64>,
    /// Last seq acknowledged to its appender. With a write-ahead log this runs ahead of
    /// `committed_seq` while a group goes into redb; readers wait for the two to meet.
    pub acked_seq: AtomicU64,
}

impl Shared {
    pub fn new(capacity: usize, committed_seq: u64) -> Shared {
        Shared {
            capacity,
            depth: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            failure: Mutex::new(None),
            counters: Counters::default(),
            committed_seq: watch::Sender::new(committed_seq),
            acked_seq: AtomicU64::new(committed_seq),
        }
    }

    pub fn failure(&self) -> Option<(String, DateTime<Utc>)> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the first failure of an outage (keeps its `since`).
    pub fn set_failure(&self, reason: &str) {
        let mut slot = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some((reason.to_string(), Utc::now()));
        }
    }

    /// Returns whether there was a failure to clear.
    pub fn clear_failure(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
    }

    pub fn unavailable_error(&self) -> Option<crate::AuditError> {
        self.failure()
            .map(|(reason, since)| crate::AuditError::Unavailable {
                reason,
                since: format_ts(&since),
            })
    }

    pub fn health(&self) -> Health {
        if self.closed.load(Ordering::Acquire) {
            return Health::Closed;
        }
        if let Some((reason, since)) = self.failure() {
            return Health::Failed { reason, since };
        }
        let depth = self.depth.load(Ordering::Relaxed);
        if depth >= self.capacity {
            return Health::Saturated {
                depth,
                capacity: self.capacity,
            };
        }
        Health::Healthy
    }

    pub fn metrics(&self) -> AuditMetrics {
        let c = &self.counters;
        AuditMetrics {
            queue_depth: self.depth.load(Ordering::Relaxed),
            queue_capacity: self.capacity,
            appended_total: c.appended.load(Ordering::Relaxed),
            committed_total: c.committed.load(Ordering::Relaxed),
            commits_total: c.commits.load(Ordering::Relaxed),
            wal_syncs_total: c.wal_syncs.load(Ordering::Relaxed),
            commit_failures_total: c.commit_failures.load(Ordering::Relaxed),
            rejected_queue_full_total: c.rejected_full.load(Ordering::Relaxed),
            rejected_unavailable_total: c.rejected_unavailable.load(Ordering::Relaxed),
            pruned_total: c.pruned.load(Ordering::Relaxed),
            last_committed_seq: *self.committed_seq.borrow(),
            last_batch_size: c.last_batch.load(Ordering::Relaxed),
            last_commit_duration_us: c.last_commit_us.load(Ordering::Relaxed),
            outcomes_unrecorded_total: c.outcomes_unrecorded.load(Ordering::Relaxed),
            writer_wakeups_total: c.writer_wakeups.load(Ordering::Relaxed),
            syncs_paced_total: c.syncs_paced.load(Ordering::Relaxed),
        }
    }
}
