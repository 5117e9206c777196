//! Typed failures of the audit trail. Every append failure is an error the proxy turns into a
//! deny: the audit trail failing closed is the whole point.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AuditError {
    /// The bounded submission queue is full; the writer is behind (slow disk).
    #[error("audit queue full ({capacity} records waiting); refusing new records")]
    QueueFull { capacity: usize },

    /// The log's lock was held past the bound (a write stalled behind a slow or failing disk);
    /// the record is refused rather than the caller held longer.
    #[error("audit log write stalled: waited {waited_ms} ms for it; refusing the record")]
    Stalled { waited_ms: u64 },

    /// An earlier commit failed; new records are refused until a retry succeeds.
    #[error("audit log unavailable since {since}: {reason}")]
    Unavailable { reason: String, since: String },

    /// The transaction holding this record failed to commit. The writer keeps the record and
    /// retries it in order, so it may still appear in the log later.
    #[error("audit commit of record {seq} failed: {reason}")]
    CommitFailed { seq: u64, reason: String },

    /// `shutdown()` was called; the log takes no more records.
    #[error("audit log is shut down")]
    Closed,

    /// The writer thread ended without answering (it panicked or was shut down mid-flight).
    #[error("audit writer thread is gone")]
    WriterGone,

    /// Records accepted but not written when the writer had to give up at shutdown.
    #[error("audit writer stopped with records {first_seq}..={last_seq} unwritten: {reason}")]
    Unflushed {
        first_seq: u64,
        last_seq: u64,
        reason: String,
    },

    #[error("audit database: {context}: {source}")]
    Db {
        context: &'static str,
        #[source]
        source: redb::Error,
    },

    /// A stored record or metadata entry could not be decoded.
    #[error("audit table {table}, key {key}: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },

    /// The newest stored record does not hash to what it claims; appending on top of it would
    /// extend a chain that is already broken.
    #[error("audit record {seq} fails its own hash check; run verify before appending")]
    TamperedHead { seq: u64 },

    #[error("audit record could not be serialized: {0}")]
    Serialize(#[source] serde_json::Error),

    #[error("audit export write failed: {0}")]
    Io(#[from] std::io::Error),

    /// The write-ahead log could not be written, synced or replayed.
    #[error("audit write-ahead log {}: {reason}", path.display())]
    Wal {
        path: std::path::PathBuf,
        reason: String,
    },

    #[error("audit config field `{field}`: {reason}")]
    Config { field: &'static str, reason: String },

    #[error("could not start the audit writer thread: {0}")]
    Spawn(#[source] std::io::Error),

    #[error("unknown export format `{0}` (expected `jsonl` or `ocsf`)")]
    UnknownFormat(String),
}

impl AuditError {
    /// Wraps any redb error with what we were doing when it happened.
    pub(crate) fn db(context: &'static str) -> impl FnOnce(redb::Error) -> AuditError {
        move |source| AuditError::Db { context, source }
    }
}

/// Shorthand used with `?` on the many distinct redb error types, all of which convert into
/// `redb::Error`.
pub(crate) trait DbContext<T> {
    fn ctx(self, context: &'static str) -> Result<T, AuditError>;
}

impl<T, E: Into<redb::Error>> DbContext<T> for Result<T, E> {
    fn ctx(self, context: &'static str) -> Result<T, AuditError> {
        self.map_err(|e| AuditError::db(context)(e.into()))
    }
}
