//! `AuditLog`: the cloneable handle the daemon appends through.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::DateTime;
use redb::Database;
use tokio::sync::{oneshot, watch};

use crate::config::AuditConfig;
use crate::error::{AuditError, DbContext};
use crate::health::{AuditMetrics, Health, Shared};
use crate::query::{RecordIter, iter_from};
use crate::queue::{Queue, Refused};
use crate::record::NewRecord;
use crate::store::{META, RECORDS, read_head};
use crate::wal::{WAL_BYTES, Wal, replay};
use crate::writer::{Ack, Pending, Writer};

/// How long `settled` waits for redb to catch up with the log; past it (a failing redb
/// commit, which also refuses new records) readers see what redb has.
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// How long an outcome waits for room in a full queue before it is counted as unrecorded.
const OUTCOME_RETRY_FOR: Duration = Duration::from_secs(2);

type Waiter = oneshot::Receiver<Result<u64, AuditError>>;

/// Why `submit` did not queue a record; a full queue gives the record back.
enum Rejected {
    Full(AuditError, Box<NewRecord>),
    Other(AuditError),
}

impl Rejected {
    fn into_error(self) -> AuditError {
        match self {
            Rejected::Full(e, _) | Rejected::Other(e) => e,
        }
    }
}

/// Handle to the audit trail. Cheap to clone, `Send + Sync`. Appends from all clones share one
/// writer thread and one sequence.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// Hands out seqs and holds records for the writer, in seq order.
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    /// Whether `append` waits for the writer (see `AuditConfig::acked`).
    acked: bool,
    /// `AuditConfig::outcomes`.
    outcomes: bool,
    db: Arc<Database>,
    writer: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer drains what is queued and exits on its own.
        self.shared.closed.store(true, Ordering::Release);
        self.queue.close();
    }
}

impl AuditLog {
    /// Creates the `audit_*` tables if needed, recovers records left in the write-ahead log,
    /// finds the chain tip (checking the newest record's own hash) and starts the writer thread.
    pub fn open(db: Arc<Database>, cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        cfg.validate()?;
        let txn = db.begin_write().ctx("begin audit setup")?;
        txn.open_table(RECORDS).ctx("create audit_records")?;
        txn.open_table(META).ctx("create audit_meta")?;
        txn.commit().ctx("commit audit setup")?;
        let wal = match &cfg.wal {
            Some(path) => {
                replay(&db, path)?;
                Some(Wal::open(path, WAL_BYTES)?)
            }
            None => None,
        };
        let head = read_head(&db)?;
        tracing::info!(
            next_seq = head.seq + 1,
            durability = ?cfg.durability,
            "audit log open"
        );

        let queue = Arc::new(Queue::new(cfg.queue_capacity, head.seq + 1));
        let shared = Arc::new(Shared::new(cfg.queue_capacity, head.seq));
        let writer = Writer {
            db: Arc::clone(&db),
            queue: Arc::clone(&queue),
            shared: Arc::clone(&shared),
            unindexed: Default::default(),
            head,
            cfg: cfg.clone(),
            last_prune: Instant::now(),
            wal,
            last_checkpoint: Instant::now(),
            unsynced: false,
            group: Default::default(),
            scratch: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("cordon-audit-writer".into())
            .spawn(move || writer.run())
            .map_err(AuditError::Spawn)?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                queue,
                shared,
                acked: cfg.acked(),
                outcomes: cfg.outcomes,
                db,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Queues `rec` now (the seq and timestamp are fixed at this call, not when the future is
    /// polled) and returns a future for its seq. Strict: resolves once the record is on disk.
    /// Batched: once it is in the write-ahead log file, or at once without a log. Fails at once if the queue is full, a commit is failing,
    /// or the log is shut down; the caller must then deny.
    pub fn append(
        &self,
        rec: NewRecord,
    ) -> impl Future<Output = Result<u64, AuditError>> + Send + 'static {
        let submitted = self
            .submit(rec, self.inner.acked)
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
            .submit(rec, self.inner.acked)
            .map_err(Rejected::into_error)?
        {
            (seq, None) => Ok(seq),
            (_, Some(ack)) => ack.blocking_recv().map_err(|_| AuditError::WriterGone)?,
        }
    }

    /// Queues the outcome of a forwarded exchange and returns at once: nothing waits for the
    /// write, so a response is never held back by it. The record is numbered when the writer
    /// takes it, after the decisions queued by then, and is written after them in the next group. Call it when the exchange has ended (last
    /// byte delivered, error, or the agent gone). While the queue is full it is retried in the
    /// background (inside a tokio runtime) for up to `OUTCOME_RETRY_FOR`; an outcome that still
    /// cannot be queued is logged and counted (`AuditMetrics::outcomes_unrecorded_total`), and
    /// its decision gets an `aborted`/`unknown` outcome at the next start. It never fails the
    /// exchange: decisions stay fail-closed, outcomes report.
    pub fn append_outcome(&self, outcome: crate::outcome::Outcome) {
        if !self.inner.outcomes {
            return;
        }
        let decision_seq = outcome.decision_seq;
        match self.submit_outcome(outcome.into_record()) {
            Ok(()) => {}
            Err(Rejected::Full(e, rec)) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let log = self.clone();
                    rt.spawn(async move { log.retry_outcome(decision_seq, rec).await });
                }
                Err(_) => self.outcome_lost(decision_seq, &e),
            },
            Err(Rejected::Other(e)) => self.outcome_lost(decision_seq, &e),
        }
    }

    async fn retry_outcome(&self, decision_seq: u64, mut rec: Box<NewRecord>) {
        let started = Instant::now();
        let mut wait = Duration::from_millis(5);
        loop {
            tokio::time::sleep(wait).await;
            match self.submit_outcome(*rec) {
                Ok(()) => return,
                Err(Rejected::Full(e, back)) if started.elapsed() < OUTCOME_RETRY_FOR => {
                    rec = back;
                    wait = (wait * 2).min(Duration::from_millis(200));
                    tracing::debug!(
                        decision_seq,
                        "outcome waits for room in the audit queue: {e}"
                    );
                }
                Err(Rejected::Full(e, _) | Rejected::Other(e)) => {
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

    /// Hands `rec` to the writer under the next seq; with `acked`, also returns the receiver
    /// its durability answer arrives on.
    fn submit(&self, rec: NewRecord, acked: bool) -> Result<(u64, Option<Waiter>), Rejected> {
        let (ack, waiter) = if acked {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let seq = self.enqueue(rec, ack, |q, p| q.push(p))?;
        Ok((seq, waiter))
    }

    /// Hands an outcome to the writer, which numbers it when it takes it (`queue.rs`).
    fn submit_outcome(&self, rec: NewRecord) -> Result<(), Rejected> {
        self.enqueue(rec, None, |q, p| q.push_unnumbered(p))
    }

    fn enqueue<T>(
        &self,
        rec: NewRecord,
        ack: Option<Ack>,
        push: impl FnOnce(&Queue, Pending) -> Result<T, Refused>,
    ) -> Result<T, Rejected> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Rejected::Other(AuditError::Closed));
        }
        if let Some(err) = shared.unavailable_error() {
            shared
                .counters
                .rejected_unavailable
                .fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::Other(err));
        }
        let pending = Pending {
            // Both are set by the queue, under the lock that orders records.
            seq: 0,
            ts: DateTime::UNIX_EPOCH,
            rec,
            awaited: ack.is_some(),
            ack,
        };
        // Count before queuing so the writer's decrement can never run first.
        shared.depth.fetch_add(1, Ordering::Relaxed);
        match push(&self.inner.queue, pending) {
            Ok(queued) => {
                shared.counters.appended.fetch_add(1, Ordering::Relaxed);
                Ok(queued)
            }
            Err(Refused::Full(p)) => {
                shared.depth.fetch_sub(1, Ordering::Relaxed);
                let n = shared
                    .counters
                    .rejected_full
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        capacity = shared.capacity,
                        rejected_total = n,
                        "audit queue full; refusing records (proxy denies)"
                    );
                }
                let full = AuditError::QueueFull {
                    capacity: shared.capacity,
                };
                Err(Rejected::Full(full, Box::new(p.rec)))
            }
            Err(Refused::Closed) => {
                shared.depth.fetch_sub(1, Ordering::Relaxed);
                Err(Rejected::Other(AuditError::Closed))
            }
        }
    }

    /// Whether this log records outcomes (`AuditConfig::outcomes`).
    pub fn records_outcomes(&self) -> bool {
        self.inner.outcomes
    }

    pub fn health(&self) -> Health {
        self.inner.shared.health()
    }

    /// Records accepted but not yet taken by the writer.
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
        self.inner.queue.close();
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
