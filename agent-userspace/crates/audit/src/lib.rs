//! Cordon's tamper-evident audit trail.
//!
//! Every decision the daemon makes becomes an [`AuditRecord`] in the shared redb database
//! (tables `audit_chunks`, `audit_meta`). Records form a SHA-256 hash chain, are written by a
//! dedicated thread with group commit ([`AuditLog`]), can be checked with [`verify`], read back
//! with [`iter_from`] / [`query`], exported as JSONL or OCSF with [`export`], and pruned with a
//! checkpoint that keeps the remaining chain verifiable ([`prune`]). What became of a forwarded
//! request is an `outcome` record linked to its decision ([`Outcome`],
//! [`AuditLog::append_outcome`], [`reconcile_outcomes`]). See `docs/audit.md`.

mod acks;
mod appender;
mod canonical;
mod chunks;
mod config;
mod encode;
mod encoded;
mod error;
mod export;
pub mod forward;
mod health;
mod index;
mod log;
mod ocsf;
mod outcome;
mod plan;
mod query;
mod reconcile;
mod record;
mod redact;
mod replay;
mod retention;
mod store;
mod verify;
mod wal;
mod writer;

pub use canonical::{GENESIS_HASH, canonical_bytes, record_hash};
pub use config::{AuditConfig, DEFAULT_SYNC_PACE, Durability, MAX_SYNC_PACE, Retention};
pub use error::AuditError;
pub use export::{ExportFormat, ExportSummary, JSONL_KEYS, export};
pub use health::{AuditMetrics, Health};
pub use log::AuditLog;
pub use ocsf::{
    CLASS_API_ACTIVITY, CLASS_DNS_ACTIVITY, CLASS_NETWORK_ACTIVITY, OCSF_VERSION, to_ocsf,
};
pub use outcome::{LlmUsage, Outcome, expects_outcome, outcome_summary, status_class};
pub use query::{
    Filter, RecordIter, format_line, format_line_with_outcome, iter_from, query, to_json_line,
};
pub use reconcile::{ReconcileReport, reconcile_outcomes};
pub use record::{AuditRecord, Decision, EventKind, NewRecord, OutcomeState, Would};
pub use redact::{REDACTED, redact_json};
pub use replay::{Replayed, replay as replay_wal};
pub use retention::{PruneReport, prune};
pub use store::{ChainPoint, Checkpoint};
pub use verify::{OutcomeTally, Problem, ProblemKind, VerifyReport, verify};
pub use wal::WAL_BYTES;

/// Table names this crate owns inside the shared database (for the vault's and operators'
/// reference; nothing else may write them). `audit_records` is the layout before chunks: a
/// database that has one gets its records moved into `audit_chunks` when the audit opens it.
pub const TABLE_NAMES: [&str; 3] = ["audit_chunks", "audit_meta", "audit_records"];
