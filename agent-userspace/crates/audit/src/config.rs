//! How the audit writer trades latency for durability, and how much history it keeps.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::AuditError;

/// When `append` resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Resolves only after the record is on disk (fsync). The writer takes every record waiting
    /// at that moment into one group (group commit).
    Strict,
    /// With a write-ahead log: resolves once the record is written to the log file (it survives
    /// a crash of the daemon, not of the machine) and is on disk within `max_delay_ms`.
    /// Without one: resolves as soon as the record is queued, so a daemon crash can lose up to
    /// that window of records.
    Batched { max_delay_ms: u64 },
}

/// Pruning policy, applied by the writer thread every `check_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this are pruned.
    pub max_age: Option<Duration>,
    /// Oldest records are pruned until the stored record bytes are at most this.
    pub max_size_bytes: Option<u64>,
    pub check_interval: Duration,
}

/// `AuditConfig::sync_pace` unless set. Measured on the bench rig against no pacing (64
/// keep-alive connections, strict, interleaved rounds): context switches per request 0.55
/// from 0.75, daemon CPU per request level to 5% less; one connection unchanged. With 150 µs
/// (and an older, stricter threshold) CPU did not move; 600 µs was no better than none.
pub const DEFAULT_SYNC_PACE: Duration = Duration::from_micros(300);
/// The longest `sync_pace` accepted: past it, waiting costs more latency than syncs cost CPU.
pub const MAX_SYNC_PACE: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub durability: Durability,
    /// Bounded submission queue; a full queue makes `append` fail at once (the proxy denies).
    pub queue_capacity: usize,
    /// Most records written in one transaction.
    pub max_batch: usize,
    pub retention: Option<Retention>,
    /// Write-ahead log file (see `wal.rs`). Without one, every group is a durable redb commit.
    pub wal: Option<PathBuf>,
    /// With a write-ahead log in strict mode: how often the records are also committed durably
    /// to redb, which lets the log start over.
    pub checkpoint_every: Duration,
    /// Strict mode, under load (`plan::PACE_FROM` appenders waiting): the least time from the
    /// end of one log sync to the start of the next, so more requests share each
    /// `fdatasync`. A request alone is never held back. Zero syncs every group at once.
    pub sync_pace: Duration,
    /// Whether forwarded exchanges get `outcome` records (`append_outcome`). Off, the trail
    /// holds decisions only; `reconcile_outcomes` then leaves this run's decisions alone.
    pub outcomes: bool,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            durability: Durability::Strict,
            queue_capacity: 8192,
            max_batch: 1024,
            retention: None,
            wal: None,
            checkpoint_every: Duration::from_secs(1),
            sync_pace: DEFAULT_SYNC_PACE,
            outcomes: true,
        }
    }
}

impl AuditConfig {
    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        if self.queue_capacity == 0 {
            return Err(AuditError::Config {
                field: "queue_capacity",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_batch == 0 {
            return Err(AuditError::Config {
                field: "max_batch",
                reason: "must be at least 1".into(),
            });
        }
        if self.checkpoint_every.is_zero() {
            return Err(AuditError::Config {
                field: "checkpoint_every",
                reason: "must be greater than zero".into(),
            });
        }
        if self.sync_pace > MAX_SYNC_PACE {
            return Err(AuditError::Config {
                field: "sync_pace",
                reason: format!(
                    "{} µs is more than the {} µs allowed",
                    self.sync_pace.as_micros(),
                    MAX_SYNC_PACE.as_micros()
                ),
            });
        }
        if let Some(r) = &self.retention {
            if r.check_interval.is_zero() {
                return Err(AuditError::Config {
                    field: "retention.check_interval",
                    reason: "must be greater than zero".into(),
                });
            }
            if r.max_age.is_none() && r.max_size_bytes.is_none() {
                return Err(AuditError::Config {
                    field: "retention",
                    reason: "set max_age or max_size_bytes (or leave retention unset)".into(),
                });
            }
        }
        Ok(())
    }
}

impl AuditConfig {
    /// How long a record may sit in the write-ahead log before a durable redb commit: the
    /// batched window, or `checkpoint_every` in strict mode (where the log itself is durable).
    pub(crate) fn checkpoint_interval(&self) -> Duration {
        match self.durability {
            Durability::Strict => self.checkpoint_every,
            Durability::Batched { max_delay_ms } => Duration::from_millis(max_delay_ms.max(1)),
        }
    }

    /// How long a written record may wait before the writer takes it into redb (with a log,
    /// syncing it first): 20 ms, or the batched window when that is shorter (the window is
    /// the promise of "on disk within"); without a log in batched mode, the window itself.
    pub(crate) fn flush_delay(&self, with_log: bool) -> Duration {
        const INDEX_DELAY: Duration = Duration::from_millis(20);
        match (self.durability, with_log) {
            (Durability::Batched { max_delay_ms }, true) => {
                INDEX_DELAY.min(Duration::from_millis(max_delay_ms.max(1)))
            }
            (Durability::Batched { max_delay_ms }, false) => Duration::from_millis(max_delay_ms),
            (Durability::Strict, _) => INDEX_DELAY,
        }
    }

    /// How far a decision's `append` takes it before it resolves: strict waits for the sync
    /// that covers it; batched writes it to the log file on the calling thread.
    pub(crate) fn reach(&self) -> crate::appender::Reach {
        match self.durability {
            Durability::Strict => crate::appender::Reach::Synced,
            Durability::Batched { .. } => crate::appender::Reach::File,
        }
    }
}
