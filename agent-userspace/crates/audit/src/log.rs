//! `AuditLog`: the cloneable handle the daemon appends through.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::watch;

use crate::appender::{Appender, Reach, Rejected, Waiter};
use crate::config::AuditConfig;
use crate::encoded::Hash;
use crate::error::AuditError;
use crate::health::{AuditMetrics, Health, Shared};
use crate::query::{RecordIter, iter_from};
use crate::record::NewRecord;
use crate::replay::replay;
use crate::store::{META_HEAD, prepare, read_head};
use crate::wal::{WAL_BYTES, Wal};
use crate::writer::Writer;

/// How long `settled` waits for redb to catch up with the log; past it (a failing redb
/// commit, which also refuses new records) readers see what redb has.
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// How long an outcome waits for room in a full queue before it is counted as unrecorded.
const OUTCOME_RETRY_FOR: Duration = Duration::from_secs(2);

/// Handle to the audit trail. Cheap to clone, `Send + Sync`. Appends from all clones share one
/// writer thread and one sequence.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// Numbers, chains and writes records on the appending thread.
    appender: Arc<Appender>,
    shared: Arc<Shared>,
    /// Whether `append` waits for a sync (strict durability).
    reach: Reach,
    /// `AuditConfig::outcomes`.
    outcomes: bool,
    db: Arc<Database>,
    writer: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer drains what is queued and exits on its own.
        self.shared.closed.store(true, Ordering::Release);
        self.appender.close();
    }
}

impl AuditLog {
    /// Creates the `audit_*` tables if needed, recovers records left in the write-ahead log,
    /// finds the chain tip (checking the newest record's own hash) and starts the writer thread.
    pub fn open(db: Arc<Database>, cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        cfg.validate()?;
        let wal = match &cfg.wal {
            // Replay prepares the tables itself, before it reads the tip it continues from.
            Some(path) => {
                replay(&db, path)?;
                Some(Wal::open(path, WAL_BYTES)?)
            }
            None => {
                prepare(&db)?;
                None
            }
        };
        let head = read_head(&db)?;
        tracing::info!(
            next_seq = head.seq + 1,
            durability = ?cfg.durability,
            "audit log open"
        );
        let head_hash = Hash::from_hex(&head.hash).ok_or_else(|| AuditError::Corrupt {
            table: "audit_meta",
            key: META_HEAD.into(),
            reason: "the head hash is not 64 hex digits".into(),
        })?;
        let shared = Arc::new(Shared::new(cfg.queue_capacity, head.seq));
        let syncer = wal.as_ref().map(Wal::syncer).transpose()?;
        let flush_delay = cfg.flush_delay(wal.is_some());
        let appender = Arc::new(Appender::new(
            Arc::clone(&shared),
            cfg.queue_capacity,
            head.seq,
            head_hash,
            wal,
            flush_delay,
        ));
        let writer = Writer {
            db: Arc::clone(&db),
            appender: Arc::clone(&appender),
            shared: Arc::clone(&shared),
            cfg: cfg.clone(),
            syncer,
            head,
            last_prune: Instant::now(),
            last_checkpoint: Instant::now(),
            last_sync_end: None,
            load: Default::default(),
            unindexed: Default::default(),
            spare: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("cordon-audit-writer".into())
            .spawn(move || writer.run())
            .map_err(AuditError::Spawn)?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                appender,
                shared,
                reach: cfg.reach(),
                outcomes: cfg.outcomes,
                db,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Writes `rec` now, on the calling thread (the seq and timestamp are fixed at this call,
    /// not when the future is polled), and returns a future for its seq. Strict: resolves once
    /// the record is on disk. Batched: at once, the record being in the write-ahead log file
    /// (without a log: in memory, committed within the delay). Fails at once if the write
    /// fails or stalls, too many records wait for the writer, a commit is failing, or the log
    /// is shut down; the caller must then deny. The future holds nothing of `rec`, so a
    /// caller keeps the record (to name it in a log line only when the append failed).
    pub fn append(
        &self,
        rec: &NewRecord,
    ) -> impl Future<Output = Result<u64, AuditError>> + Send + 'static + use<> {
        let submitted = self
            .submit(rec, self.inner.reach)
            .map_err(Rejected::into_error);
        async move {
            match submitted? {
                (seq, None) => Ok(seq),
                (_, Some(ack)) => ack.await.map_err(|_| AuditError::WriterGone)?,
            }
        }
    }

    /// `append` for threads outside an async runtime: blocks until the future would resolve.
    /// Must not be called from inside a tokio runtime thread (tokio panics there).
    pub fn append_blocking(&self, rec: NewRecord) -> Result<u64, AuditError> {
        match self
            .submit(&rec, self.inner.reach)
            .map_err(Rejected::into_error)?
        {
            (seq, None) => Ok(seq),
            (_, Some(ack)) => ack.blocking_recv().map_err(|_| AuditError::WriterGone)?,
        }
    }

    /// Writes the outcome of a forwarded exchange and returns at once: nothing waits for a
    /// sync or a write, so a response is never held back by it. The record is numbered now,
    /// after its decision; its frame reaches the log with the next decision's write or the
    /// writer's next group (batched: within the batch delay), and the next sync covers it. Call it when the exchange has ended
    /// (last byte delivered, error, or the agent gone). While too many records wait for the
    /// writer it is retried in the background (inside a tokio runtime) for up to
    /// `OUTCOME_RETRY_FOR`; an outcome that still cannot be written is logged and counted
    /// (`AuditMetrics::outcomes_unrecorded_total`), and its decision gets an
    /// `aborted`/`unknown` outcome at the next start. It never fails the exchange: decisions
    /// stay fail-closed, outcomes report.
    pub fn append_outcome(&self, outcome: crate::outcome::Outcome) {
        if !self.inner.outcomes {
            return;
        }
        let decision_seq = outcome.decision_seq;
        let rec = outcome.into_record();
        match self.inner.appender.append(&rec, Reach::Queued) {
            Ok(_) => {}
            Err(Rejected::Full(e)) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let log = self.clone();
                    rt.spawn(async move { log.retry_outcome(decision_seq, rec).await });
                }
                Err(_) => self.outcome_lost(decision_seq, &e),
            },
            Err(Rejected::Other(e)) => self.outcome_lost(decision_seq, &e),
        }
    }

    async fn retry_outcome(&self, decision_seq: u64, rec: NewRecord) {
        let started = Instant::now();
        let mut wait = Duration::from_millis(5);
        loop {
            tokio::time::sleep(wait).await;
            match self.inner.appender.append(&rec, Reach::Queued) {
                Ok(_) => return,
                Err(Rejected::Full(e)) if started.elapsed() < OUTCOME_RETRY_FOR => {
                    wait = (wait * 2).min(Duration::from_millis(200));
                    tracing::debug!(decision_seq, "outcome waits for room in the audit log: {e}");
                }
                Err(Rejected::Full(e) | Rejected::Other(e)) => {
                    return self.outcome_lost(decision_seq, &e);
                }
            }
        }
    }

    fn outcome_lost(&self, decision_seq: u64, e: &AuditError) {
        self.inner
            .shared
            .counters
            .outcomes_unrecorded
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            decision_seq,
            "outcome not recorded (its decision will be marked at the next start): {e}"
        );
    }

    fn submit(&self, rec: &NewRecord, reach: Reach) -> Result<(u64, Option<Waiter>), Rejected> {
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(Rejected::Other(AuditError::Closed));
        }
        self.inner.appender.append(rec, reach)
    }

    /// Whether this log records outcomes (`AuditConfig::outcomes`).
    pub fn records_outcomes(&self) -> bool {
        self.inner.outcomes
    }

    pub fn health(&self) -> Health {
        self.inner.shared.health()
    }

    /// Records written but not yet taken by the writer for redb.
    pub fn queue_depth(&self) -> usize {
        self.inner.shared.depth.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> AuditMetrics {
        self.inner.shared.metrics()
    }

    /// The newest committed seq, updated after every commit (for `audit tail -f`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.shared.committed_seq.subscribe()
    }

    /// Waits (at most `SETTLE_MAX`) until every record acknowledged so far is in redb, so a
    /// reader sees what its appenders were told is recorded. With a write-ahead log a group
    /// is acknowledged once it is in the log, just before its redb insert.
    pub async fn settled(&self) {
        let target = self.inner.shared.acked_seq.load(Ordering::Acquire);
        let mut committed = self.subscribe();
        let _ = tokio::time::timeout(SETTLE_MAX, committed.wait_for(|&c| c >= target)).await;
    }

    /// The database, for readers: call `settled` first to see every acknowledged record.
    pub fn database(&self) -> &Arc<Database> {
        &self.inner.db
    }

    /// Committed records from `seq` on.
    pub fn iter_from(&self, seq: u64) -> Result<RecordIter, AuditError> {
        iter_from(&self.inner.db, seq)
    }

    /// Refuses new records, waits for the writer to commit everything it accepted, and stops
    /// it. Blocks: call it from `spawn_blocking` inside a runtime. Later calls return `Ok`.
    pub fn shutdown(&self) -> Result<(), AuditError> {
        self.inner.shared.closed.store(true, Ordering::Release);
        self.inner.appender.close();
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        let result = handle.join().map_err(|_| AuditError::WriterGone)?;
        tracing::info!(ok = result.is_ok(), "audit writer stopped");
        result
    }
}
