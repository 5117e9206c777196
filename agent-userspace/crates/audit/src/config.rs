//! How the audit writer trades latency for durability, and how much history it keeps.

use std::time::Duration;

use crate::error::AuditError;

/// When `append` resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Resolves only after the transaction holding the record committed with fsync. The writer
    /// batches every record waiting at that moment into one transaction (group commit).
    Strict,
    /// Resolves as soon as the record is queued; the writer commits within `max_delay_ms`.
    /// A crash can lose up to that window of records.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub durability: Durability,
    /// Bounded submission queue; a full queue makes `append` fail at once (the proxy denies).
    pub queue_capacity: usize,
    /// Most records written in one transaction.
    pub max_batch: usize,
    pub retention: Option<Retention>,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            durability: Durability::Strict,
            queue_capacity: 8192,
            max_batch: 1024,
            retention: None,
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
