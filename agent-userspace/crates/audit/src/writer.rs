//! The single writer thread. It owns the chain tip, takes records off the bounded queue in
//! submission order, and writes each group to the write-ahead log, from which redb is filled
//! in larger transactions (`index.rs`); without a log, each group goes into redb in one
//! durable transaction. A failed group is kept and retried in place, so accepted records are
//! never dropped or reordered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redb::Database;
use tokio::sync::oneshot;

use crate::config::{AuditConfig, Durability};
use crate::encode::Scratch;
use crate::encoded::Encoded;
use crate::error::{AuditError, DbContext};
use crate::health::Shared;
use crate::index::Unindexed;
use crate::queue::{Queue, Taken};
use crate::record::NewRecord;
use crate::retention;
use crate::store::{ChainPoint, META, META_HEAD, insert_records, meta_bytes};
use crate::wal::Wal;

pub(crate) type Ack = oneshot::Sender<Result<u64, AuditError>>;

pub(crate) struct Pending {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub rec: NewRecord,
    /// Present in strict mode: resolved once the record is durable (or its commit failed).
    pub ack: Option<Ack>,
    /// An appender waits for this record to be durable (kept when `ack` is taken, so a
    /// retried group still syncs). Outcomes are not awaited: see `Writer::commit`.
    pub awaited: bool,
}

/// Retries of a failing group once shutdown has been requested, before giving up.
const RETRIES_AFTER_SHUTDOWN: u32 = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Writer {
    pub db: Arc<Database>,
    pub queue: Arc<Queue>,
    pub shared: Arc<Shared>,
    pub head: ChainPoint,
    pub cfg: AuditConfig,
    pub last_prune: Instant,
    pub wal: Option<Wal>,
    pub last_checkpoint: Instant,
    /// Logged groups waiting for their redb insert.
    pub unindexed: Unindexed,
    /// The log holds groups written but not yet synced (strict mode, nothing awaited them).
    pub unsynced: bool,
    /// The group being written, and the encoder's buffer: both kept from group to group, so
    /// a warm writer allocates nothing per record (`encoded.rs`).
    pub group: Encoded,
    pub scratch: Scratch,
}

impl Writer {
    pub fn run(mut self) -> Result<(), AuditError> {
        loop {
            let Some(mut batch) = self.next_blocking() else {
                return self.finish();
            };
            self.fill(&mut batch);
            self.commit_split(batch)?;
            if self.unindexed.due_in().is_some_and(|left| left.is_zero()) {
                self.index();
            }
        }
    }

    /// Inserts what the log holds and redb lacks, and tells readers how far redb goes.
    /// A deferred group is synced first: nothing becomes readable (queried, exported,
    /// forwarded) before it is durable, so no reader ever sees a record a crash could take
    /// back and a later record could reuse the seq of.
    fn insert_unindexed(&mut self) -> Result<Option<u64>, AuditError> {
        self.sync_deferred()?;
        let tip = self.unindexed.insert(&self.db)?;
        if let Some(tip) = &tip {
            self.shared.committed_seq.send_replace(tip.seq);
        }
        Ok(tip.map(|t| t.seq))
    }

    fn sync_deferred(&mut self) -> Result<(), AuditError> {
        if let Some(wal) = &self.wal
            && self.unsynced
        {
            wal.sync()?;
            self.unsynced = false;
            self.shared
                .counters
                .wal_syncs
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Moves what the log holds into redb; a failure refuses new records until it works.
    fn index(&mut self) {
        match self.insert_unindexed() {
            Ok(Some(seq)) => {
                if self.shared.clear_failure() {
                    tracing::warn!(seq, "audit index writes succeed again");
                }
            }
            Ok(None) => {}
            Err(e) => {
                let reason = e.to_string();
                self.shared
                    .counters
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.set_failure(&reason);
                tracing::error!(
                    error = %reason,
                    "audit index write failed; the records are safe in the write-ahead log; \
                     refusing new records and retrying"
                );
            }
        }
    }

    /// The last act of a writer that stops on request: everything durable, then the mark that
    /// says this run ended cleanly (so a decision it left without an outcome was cut by the
    /// stop, not lost in a crash; see `reconcile`).
    fn finish(&mut self) -> Result<(), AuditError> {
        self.checkpoint()?;
        crate::store::mark_clean_stop(&self.db, &self.head)
    }

    /// Makes everything in redb durable and lets the write-ahead log start over.
    fn checkpoint(&mut self) -> Result<(), AuditError> {
        self.last_checkpoint = Instant::now();
        if self.wal.as_ref().is_none_or(Wal::is_empty) {
            return Ok(());
        }
        // A logged group not yet in redb would be lost with the log: insert it first.
        self.insert_unindexed()?;
        let txn = self.db.begin_write().ctx("begin audit checkpoint")?;
        {
            // Rewriting the head gives the durable commit something to carry; it persists
            // every non-durable commit before it.
            let mut meta = txn.open_table(META).ctx("open audit_meta")?;
            meta.insert(META_HEAD, meta_bytes(&self.head)?.as_slice())
                .ctx("update audit head")?;
        }
        txn.commit().ctx("checkpoint audit records")?;
        if let Some(wal) = &mut self.wal {
            wal.reset();
        }
        Ok(())
    }

    fn checkpoint_due(&self) -> Option<Duration> {
        let wal = self.wal.as_ref()?;
        if wal.is_empty() {
            return None;
        }
        Some(
            self.cfg
                .checkpoint_interval()
                .saturating_sub(self.last_checkpoint.elapsed()),
        )
    }

    /// Waits for the next group; runs retention and checkpoints while idle. `None` = shut down.
    fn next_blocking(&mut self) -> Option<Vec<Pending>> {
        loop {
            let interval = self.cfg.retention.as_ref().map(|r| r.check_interval);
            if let Some(every) = interval
                && self.last_prune.elapsed() >= every
            {
                self.prune();
            }
            if self.checkpoint_due().is_some_and(|left| left.is_zero())
                && let Err(e) = self.checkpoint()
            {
                // The records are safe in the log; the next checkpoint tries again.
                tracing::warn!(error = %e, "audit checkpoint failed; will retry");
            }
            if self.unindexed.due_in().is_some_and(|left| left.is_zero()) {
                self.index();
            }
            let floor = |d: Duration| d.max(Duration::from_millis(1));
            let wake = [
                interval.map(|every| every.saturating_sub(self.last_prune.elapsed())),
                self.checkpoint_due().map(floor),
                self.unindexed.due_in().map(floor),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|left| Instant::now() + left);
            match self.queue.take(self.cfg.max_batch, wake) {
                Taken::Batch(batch) => {
                    self.taken(batch.len());
                    return Some(batch);
                }
                Taken::Timer => continue,
                Taken::Closed => return None,
            }
        }
    }

    fn taken(&self, n: usize) {
        self.shared.depth.fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds whatever else belongs in this group: with batched durability and no log, what
    /// arrives within `max_delay_ms`. With a log, batched appends wait for their write, so
    /// the group is what was queued when it was taken.
    fn fill(&mut self, batch: &mut Vec<Pending>) {
        let Durability::Batched { max_delay_ms } = self.cfg.durability else {
            return;
        };
        if self.wal.is_some() || batch.len() >= self.cfg.max_batch {
            return;
        }
        let until = Instant::now() + Duration::from_millis(max_delay_ms);
        let more = self
            .queue
            .take_until(self.cfg.max_batch - batch.len(), until);
        self.taken(more.len());
        batch.extend(more);
    }

    /// Commits a group whose awaited records come first (the queue numbers outcomes after
    /// them) in two steps when it can: the awaited part is written, synced and acknowledged,
    /// then the rest is written and left for the next sync. Requests waiting on the sync do
    /// not wait for the outcomes' encoding and write; the chain and the log order are the
    /// same either way.
    fn commit_split(&mut self, mut batch: Vec<Pending>) -> Result<(), AuditError> {
        let synced = self.wal.is_some() && self.cfg.durability == Durability::Strict;
        let awaited = batch.iter().rposition(|p| p.awaited).map_or(0, |i| i + 1);
        if synced && awaited > 0 && awaited < batch.len() {
            let rest = batch.split_off(awaited);
            self.commit_with_retry(batch)?;
            return self.commit_with_retry(rest);
        }
        self.commit_with_retry(batch)
    }

    fn commit_with_retry(&mut self, mut batch: Vec<Pending>) -> Result<(), AuditError> {
        let mut backoff = Duration::from_millis(50);
        let mut retries_after_shutdown = 0;
        loop {
            let started = Instant::now();
            match self.commit(&mut batch) {
                Ok(tip) => {
                    self.committed(batch, tip, started.elapsed());
                    return Ok(());
                }
                Err(e) => {
                    let reason = e.to_string();
                    let c = &self.shared.counters;
                    c.commit_failures.fetch_add(1, Ordering::Relaxed);
                    self.shared.set_failure(&reason);
                    let (first, last) = seq_range(&batch);
                    tracing::error!(
                        first_seq = first,
                        last_seq = last,
                        error = %reason,
                        "audit commit failed; refusing new records and retrying this group"
                    );
                    // Strict callers learn now (they deny); the records stay queued here.
                    for p in &mut batch {
                        if let Some(ack) = p.ack.take() {
                            let _ = ack.send(Err(AuditError::CommitFailed {
                                seq: p.seq,
                                reason: reason.clone(),
                            }));
                        }
                    }
                    if self.shared.closed.load(Ordering::Acquire) {
                        retries_after_shutdown += 1;
                        if retries_after_shutdown > RETRIES_AFTER_SHUTDOWN {
                            tracing::error!(
                                first_seq = first,
                                last_seq = last,
                                "audit writer giving up at shutdown; these records are lost"
                            );
                            return Err(AuditError::Unflushed {
                                first_seq: first,
                                last_seq: last,
                                reason,
                            });
                        }
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes one group: to the log, where its appenders are acknowledged (replay recovers
    /// it from there) and it waits for its redb insert; or, without a log, in one durable
    /// redb transaction. In strict mode the log is synced when an appender waits on the
    /// group. A group nobody waits on (outcomes, written after their exchange ended) is
    /// synced by the next group that is awaited or before its redb insert (`MAX_DELAY`,
    /// 20 ms), whichever comes first: one `fdatasync` per request, not two, when requests
    /// arrive one at a time. A crash in between loses at most those outcomes, and
    /// `reconcile` gives their decisions `unknown`. Encoding happens here so a retry
    /// after a failed attempt chains from the same tip and produces the same bytes.
    fn commit(&mut self, batch: &mut [Pending]) -> Result<ChainPoint, AuditError> {
        self.group.clear();
        for p in batch.iter() {
            self.group
                .push(p.seq, &p.ts, &p.rec, &self.head.hash, &mut self.scratch);
        }
        let tip = self.group.tip().unwrap_or_else(|| self.head.clone());
        if self.wal.as_ref().is_some_and(|w| !w.has_room(&self.group)) {
            self.checkpoint()?;
        }
        // The log write and its fsync happen before redb's write lock is taken, so other
        // writers of the shared database (vault, approvals) never wait behind the fsync.
        if let Some(wal) = &mut self.wal {
            wal.append(&self.group)?;
            if self.cfg.durability == Durability::Strict {
                if batch.iter().any(|p| p.awaited) {
                    wal.sync()?;
                    self.unsynced = false;
                    self.shared
                        .counters
                        .wal_syncs
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    self.unsynced = true;
                }
            }
            self.unindexed.push(&self.group);
            self.acknowledge(batch);
            return Ok(tip);
        }
        insert_records(&self.db, &self.group, &tip, redb::Durability::Immediate)?;
        Ok(tip)
    }

    /// Tells each waiting appender its record is kept. `acked_seq` moves first, so a reader
    /// that learns of the record waits for it to reach redb (`AuditLog::settled`).
    fn acknowledge(&self, batch: &mut [Pending]) {
        if let Some(last) = batch.last() {
            self.shared.acked_seq.fetch_max(last.seq, Ordering::AcqRel);
        }
        for p in batch.iter_mut() {
            if let Some(ack) = p.ack.take() {
                let _ = ack.send(Ok(p.seq));
            }
        }
    }

    fn committed(&mut self, mut batch: Vec<Pending>, tip: ChainPoint, took: Duration) {
        let n = batch.len() as u64;
        let c = &self.shared.counters;
        c.committed.fetch_add(n, Ordering::Relaxed);
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.last_batch.store(n, Ordering::Relaxed);
        c.last_commit_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        // An index failure stays until an index write succeeds.
        if !self.unindexed.failing() && self.shared.clear_failure() {
            tracing::warn!(
                seq = tip.seq,
                "audit commits succeed again; accepting records"
            );
        }
        if self.wal.is_none() {
            self.shared.committed_seq.send_replace(tip.seq);
        }
        self.head = tip;
        // Without a log, appenders learn only now; the caller may have stopped waiting.
        self.acknowledge(&mut batch);
    }

    fn prune(&mut self) {
        self.last_prune = Instant::now();
        let Some(policy) = self.cfg.retention.clone() else {
            return;
        };
        match retention::prune(&self.db, &policy, Utc::now()) {
            Ok(report) if report.pruned > 0 => {
                self.shared
                    .counters
                    .pruned
                    .fetch_add(report.pruned, Ordering::Relaxed);
                tracing::info!(
                    pruned = report.pruned,
                    checkpoint_seq = report.checkpoint.as_ref().map(|c| c.seq),
                    "audit retention pruned old records"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit retention failed; will retry"),
        }
    }
}

fn seq_range(batch: &[Pending]) -> (u64, u64) {
    (
        batch.first().map_or(0, |p| p.seq),
        batch.last().map_or(0, |p| p.seq),
    )
}
