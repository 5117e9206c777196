//! Shipping the trail off the host: every record, as an RFC 5424 syslog message over TCP
//! (octet-counting framing, RFC 6587), optionally over TLS, to a collector (rsyslog,
//! syslog-ng, Vector, a SIEM).
//!
//! - At least once: a persisted cursor (`cursor.rs`) holds the last record the collector is
//!   taken to have (`acks.rs` says when); after an outage or a restart forwarding resumes
//!   right after it, so nothing is lost and only the last unconfirmed window is sent twice.
//! - In the background: the forwarder reads committed records from the database on its own
//!   task; a slow or absent collector only makes it fall behind (`ForwardStats::lag`), never
//!   slows an append. The local chain stays the source of truth.
//! - Reconnects with backoff (100 ms doubling to 30 s).

mod acks;
mod conn;
mod cursor;
mod session;
mod syslog;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use acks::AckTracker;
pub use cursor::CursorFile;
pub use syslog::{Facility, Header};

use crate::export::ExportFormat;
use crate::log::AuditLog;

/// `[audit.forward]`, resolved.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `host:port` of the collector.
    pub address: String,
    pub tls: Option<TlsSettings>,
    /// The name TLS verifies (default: the host part of `address`).
    pub server_name: String,
    /// Message body: the `jsonl` or `ocsf` export line.
    pub format: ExportFormat,
    pub header: Header,
    /// Where the cursor is kept (the daemon: `STATE_DIR/audit-forward.cursor`).
    pub cursor_file: PathBuf,
    /// How long a record acknowledged by the collector's TCP stack must stay unchallenged
    /// before it counts as delivered (see `acks.rs`).
    pub ack_grace: Duration,
    /// Most records read and written per round.
    pub batch: usize,
}

/// TLS to the collector: rustls (aws-lc-rs), verifying the collector's certificate.
#[derive(Clone)]
pub struct TlsSettings {
    pub config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSettings")
    }
}

impl TlsSettings {
    /// Trusts only the CAs in `ca_file` (PEM), or, without one, the system roots. No ALPN is
    /// offered: syslog has no protocol id.
    pub fn new(ca_file: Option<&std::path::Path>) -> Result<TlsSettings, ForwardError> {
        let base = match ca_file {
            Some(f) => cordon_tls::UpstreamTls::with_only_extra_cas(&[f.to_path_buf()]),
            None => cordon_tls::UpstreamTls::new(&[]),
        }
        .map_err(|e| ForwardError::Tls(e.to_string()))?;
        let mut config = (*base.client_config(cordon_tls::UpstreamAlpn::Http1Only)).clone();
        config.alpn_protocols.clear();
        Ok(TlsSettings {
            config: Arc::new(config),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("connecting to the collector {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("TLS to the collector: {0}")]
    Tls(String),
    #[error("forward cursor {}: {reason}", path.display())]
    Cursor { path: PathBuf, reason: String },
    #[error("writing to the collector: {0}")]
    Io(#[from] std::io::Error),
    #[error("the collector closed the connection")]
    Closed,
    #[error("reading records to forward: {0}")]
    Audit(#[from] crate::error::AuditError),
}

impl ForwardError {
    pub(crate) fn cursor(path: &std::path::Path, e: impl std::fmt::Display) -> ForwardError {
        ForwardError::Cursor {
            path: path.into(),
            reason: e.to_string(),
        }
    }
}

/// What the forwarder reports (Prometheus reads it at scrape time).
#[derive(Debug, Default)]
pub struct ForwardStats {
    connected: AtomicBool,
    /// Newest seq written to the collector.
    sent_seq: AtomicU64,
    /// Newest seq delivered (the persisted cursor).
    delivered_seq: AtomicU64,
    records_sent: AtomicU64,
    reconnects: AtomicU64,
    /// Records pruned by retention before they could be forwarded.
    skipped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of [`ForwardStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardSnapshot {
    pub connected: bool,
    pub sent_seq: u64,
    pub delivered_seq: u64,
    pub records_sent_total: u64,
    pub reconnects_total: u64,
    pub skipped_total: u64,
    pub last_error: Option<String>,
}

impl ForwardSnapshot {
    /// Records committed locally but not yet delivered, given the newest committed seq.
    pub fn lag(&self, last_committed_seq: u64) -> u64 {
        last_committed_seq.saturating_sub(self.delivered_seq)
    }
}

impl ForwardStats {
    pub fn snapshot(&self) -> ForwardSnapshot {
        ForwardSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            sent_seq: self.sent_seq.load(Ordering::Relaxed),
            delivered_seq: self.delivered_seq.load(Ordering::Relaxed),
            records_sent_total: self.records_sent.load(Ordering::Relaxed),
            reconnects_total: self.reconnects.load(Ordering::Relaxed),
            skipped_total: self.skipped.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    fn set_error(&self, e: &ForwardError) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }
}

/// The running forwarder.
pub struct Forwarder {
    stats: Arc<ForwardStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Reads the cursor (a corrupt one is an error: nothing is guessed) and starts forwarding
    /// on a task of the current runtime. The task runs until the `Forwarder` is dropped.
    pub fn start(log: AuditLog, cfg: ForwardConfig) -> Result<Forwarder, ForwardError> {
        let cursor = CursorFile::new(&cfg.cursor_file);
        let mut from = cursor.load()?.unwrap_or(0);
        let head = log.metrics().last_committed_seq;
        if from > head {
            // The cursor belongs to another trail (the database was replaced): waiting for
            // seqs past it would hold back every record of this one.
            tracing::warn!(
                cursor = %cursor.path().display(),
                cursor_seq = from,
                head_seq = head,
                "the forward cursor is past the end of the audit trail; forwarding it from the start"
            );
            from = 0;
        }
        let stats = Arc::new(ForwardStats::default());
        stats.delivered_seq.store(from, Ordering::Relaxed);
        tracing::info!(
            collector = %cfg.address,
            tls = cfg.tls.is_some(),
            after_seq = from,
            "forwarding the audit trail"
        );
        let task = tokio::spawn(session::run(log, cfg, cursor, from, Arc::clone(&stats)));
        Ok(Forwarder { stats, task })
    }

    pub fn stats(&self) -> Arc<ForwardStats> {
        Arc::clone(&self.stats)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
