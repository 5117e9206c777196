//! The writer thread. Appenders number, encode and chain their records themselves
//! (`appender.rs`); this thread makes them durable and readable: for strict appenders it writes
//! the group's frames (one `pwrite`) and syncs the write-ahead log (one `fdatasync` for
//! everyone waiting, group commit), takes written records into redb in larger
//! non-durable transactions (`index.rs`), checkpoints, and prunes. Without a log, taking
//! records into redb is one durable transaction, and that is the sync. It is woken only when
//! it must act (see `Appender::append`), never once per record.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use redb::Database;

use crate::acks::{CoreAcks, Verdict};
use crate::appender::{Appender, State, Writer as Park};
use crate::config::{AuditConfig, Durability};
use crate::encoded::Encoded;
use crate::error::{AuditError, DbContext};
use crate::health::Shared;
use crate::index::Unindexed;
use crate::plan::{self, Clocks, Job, Snapshot};
use crate::retention;
use crate::store::{ChainPoint, META, META_HEAD, mark_clean_stop, meta_bytes};
use crate::wal::{Syncer, WriteError};

/// A writer with nothing due for this long is idle (`release_idle`).
const IDLE: Duration = Duration::from_secs(1);

/// Attempts at a failing write once shutdown has been requested, before giving up.
const RETRIES_AFTER_SHUTDOWN: u32 = 3;

pub(crate) struct Writer {
    pub db: Arc<Database>,
    pub appender: Arc<Appender>,
    pub shared: Arc<Shared>,
    pub cfg: AuditConfig,
    pub syncer: Option<Syncer>,
    pub head: ChainPoint,
    pub last_prune: Instant,
    pub last_checkpoint: Instant,
    /// Taken records waiting for (or retrying) their redb insert.
    pub unindexed: Unindexed,
    /// The buffer swapped in for the appenders' at each take, so neither allocates.
    pub spare: Encoded,
    /// When the last log sync returned (`plan::pace_wait`).
    pub last_sync_end: Option<Instant>,
    /// What the last group took of the strict appenders (`plan::pace_wait`); the rest is read
    /// when the next group is due.
    pub load: plan::Load,
}

/// Fails every waiter left if the thread ends (returns or panics), so no appender waits on
/// a writer that is gone.
struct Closer(Arc<Appender>);

impl Drop for Closer {
    fn drop(&mut self) {
        let cores = {
            let mut s = self.0.lock();
            s.closed = true;
            s.waiters.clear();
            std::mem::take(&mut s.cores)
        };
        for core in cores {
            core.close();
        }
    }
}

impl Writer {
    pub fn run(mut self) -> Result<(), AuditError> {
        let _closer = Closer(Arc::clone(&self.appender));
        loop {
            match self.next_job() {
                Job::Sync => self.sync_waiters(),
                Job::Flush => {
                    self.flush();
                }
                Job::Checkpoint => {
                    if let Err(e) = self.checkpoint() {
                        // The records are safe in the log; the next checkpoint tries again.
                        tracing::warn!(error = %e, "audit checkpoint failed; will retry");
                    }
                }
                Job::Prune => self.prune(),
                Job::Finish => return self.finish(),
            }
        }
    }

    /// Parks until a job is due and returns it.
    fn next_job(&mut self) -> Job {
        let mut s = self.appender.lock();
        loop {
            s.writer = Park::Running;
            let at = match plan::due(&self.snapshot(&s), &self.clocks(), Instant::now()) {
                Ok(job) => return job,
                Err(at) => at,
            };
            s.writer = Park::Parked(at);
            // Idle: nothing waits for it and nothing is due soon. Under load a group or an
            // index insert is always due within milliseconds (or, batched without a log, a
            // long window's group waits in `written`).
            let quiet = at.is_none_or(|at| at.saturating_duration_since(Instant::now()) >= IDLE);
            if quiet && s.written.is_empty() {
                release_idle(&mut s, &mut self.spare, &mut self.unindexed);
            }
            match at {
                Some(at) => {
                    self.appender.wake.wait_until(&mut s, at);
                }
                None => self.appender.wake.wait(&mut s),
            }
        }
    }

    fn snapshot(&self, s: &State) -> Snapshot {
        Snapshot {
            closed: s.closed,
            waiters: !s.waiters.is_empty() || s.core_awaited > s.core_answered,
            written: s.written.len(),
            written_since: s.written_since,
            log: s.wal.as_ref().map(|w| (w.used(), w.other_busy())),
            checkpoint_asked: s.checkpoint_asked,
            unindexed_due: self.unindexed.due_in(),
        }
    }

    fn clocks(&self) -> Clocks {
        Clocks {
            strict: self.cfg.durability == Durability::Strict,
            capacity: self.shared.capacity,
            flush_delay: self.cfg.flush_delay(self.syncer.is_some()),
            checkpoint_every: self.cfg.checkpoint_interval(),
            last_checkpoint: self.last_checkpoint,
            prune_every: self.cfg.retention.as_ref().map(|r| r.check_interval),
            last_prune: self.last_prune,
        }
    }

    /// Writes the group's frames, syncs the log and answers every waiter the sync covers.
    fn sync_waiters(&mut self) {
        self.pace();
        let (wrote, upto, written) = {
            let mut s = self.appender.lock();
            self.load.last_group = s.take_asks();
            let wrote = self.appender.write_out(&mut s);
            (wrote, s.file_seq, s.written_seq)
        };
        match wrote {
            Ok(()) => {
                if let Err(e) = self.sync_log(upto) {
                    self.sync_failed(written, &e);
                }
            }
            // The log cannot take them now: a checkpoint makes them durable through redb.
            Err(WriteError::Full) => {
                if let Err(e) = self.checkpoint() {
                    self.sync_failed(written, &e);
                }
            }
            Err(WriteError::Io(e)) => self.sync_failed(written, &e),
        }
    }

    /// Under load, waits out the rest of the sync pace (`plan::pace_wait`) before a strict
    /// group is taken (only strict waiters make a `Job::Sync`). The writer counts as running
    /// meanwhile, so appenders add themselves to the group without waking it.
    fn pace(&self) {
        let load = {
            let s = self.appender.lock();
            plan::Load {
                waiting: s.sync_asks,
                alongside: s.sync_asks_alongside,
                ..self.load
            }
        };
        let wait = plan::pace_wait(load, self.last_sync_end, self.cfg.sync_pace, Instant::now());
        if !wait.is_zero() {
            self.shared
                .counters
                .syncs_paced
                .fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
        }
    }

    /// `fdatasync`s the log (if anything up to `upto` is unsynced) and answers the waiters it
    /// covers. Everything written before the call is covered: each write finished under the
    /// lock `written_seq` was read under.
    fn sync_log(&mut self, upto: u64) -> Result<(), AuditError> {
        let Some(syncer) = &self.syncer else {
            return Ok(());
        };
        if self.appender.lock().synced_seq < upto {
            let synced = syncer.sync();
            self.last_sync_end = Some(Instant::now());
            synced?;
            self.shared
                .counters
                .wal_syncs
                .fetch_add(1, Ordering::Relaxed);
        }
        self.synced(upto);
        Ok(())
    }

    /// Everything up to `upto` is on disk: tell its waiters, all at once.
    fn synced(&self, upto: u64) {
        self.answer(Verdict { upto, failed: None });
    }

    /// Answers every waiter up to `verdict.upto` with it: the writer's own at once, each proxy
    /// core's through one hand-over to that core (`acks.rs`). A success also moves the synced
    /// and acknowledged marks.
    fn answer(&self, verdict: Verdict) {
        let upto = verdict.upto;
        let (waiters, cores) = {
            let mut s = self.appender.lock();
            if verdict.failed.is_none() {
                s.synced_seq = s.synced_seq.max(upto);
            }
            let n = s.waiters.iter().take_while(|(seq, _)| *seq <= upto).count();
            (
                s.waiters.drain(..n).collect::<Vec<_>>(),
                live_cores(&mut s, upto),
            )
        };
        if waiters.is_empty() && cores.is_empty() {
            return;
        }
        if verdict.failed.is_none() {
            self.shared.acked_seq.fetch_max(upto, Ordering::AcqRel);
        }
        for core in cores {
            core.deliver(&verdict);
        }
        for (seq, ack) in waiters {
            // A waiter that stopped waiting (its request went away) needs no answer.
            let _ = ack.send(verdict.answer(seq));
        }
    }

    /// A sync or a durable commit failed: its waiters are refused now (the records stay and
    /// may still appear: the log over-reports, never under-reports), and appends are refused
    /// until a later attempt succeeds.
    fn sync_failed(&mut self, upto: u64, e: &AuditError) {
        let reason = e.to_string();
        self.shared
            .counters
            .commit_failures
            .fetch_add(1, Ordering::Relaxed);
        self.shared.set_failure(&reason);
        tracing::error!(upto, error = %reason, "audit sync failed; refusing records and retrying");
        self.answer(Verdict {
            upto,
            failed: Some(reason),
        });
        // An fdatasync error may leave the pages marked clean: the records are made durable
        // through redb instead, by the next flush, which counts as the retry.
        self.unindexed.need_durable();
    }

    /// Takes what the appenders wrote and puts it into redb: after syncing the log (nothing
    /// becomes readable before it is on disk), in a non-durable transaction; without a log,
    /// in a durable one, which answers the strict waiters. Returns whether redb holds
    /// everything taken.
    fn flush(&mut self) -> bool {
        let (wrote, upto, written, unwritten) = {
            let mut s = self.appender.lock();
            self.load.last_group = s.take_asks();
            let wrote = self.appender.write_out(&mut s);
            std::mem::swap(&mut s.written, &mut self.spare);
            s.written_since = None;
            self.shared.depth.store(0, Ordering::Relaxed);
            let unwritten = self.spare.tip().is_some_and(|t| t.seq > s.file_seq);
            (wrote, s.file_seq, s.written_seq, unwritten)
        };
        self.unindexed.push(&self.spare);
        self.spare.clear();
        if let Err(WriteError::Io(e)) = &wrote {
            self.sync_failed(written, e);
        }
        if self.syncer.is_some()
            && let Err(e) = self.sync_log(upto)
        {
            self.sync_failed(written, &e);
        }
        // Records the log could not take (full, or failing) go into redb durably instead.
        if unwritten {
            self.unindexed.need_durable();
        }
        let durable = self.syncer.is_none() || self.unindexed.durable_needed();
        let started = Instant::now();
        match self.unindexed.insert(&self.db, durable) {
            Ok(None) => true,
            Ok(Some((tip, n))) => {
                self.indexed(tip, n, durable, started.elapsed());
                true
            }
            Err(e) => {
                if self.syncer.is_none() {
                    // Without a log the insert was the sync.
                    self.sync_failed(written, &e);
                } else {
                    self.shared.set_failure(&e.to_string());
                    self.shared
                        .counters
                        .commit_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        error = %e,
                        "audit index write failed; the records are safe in the write-ahead \
                         log; refusing new records and retrying"
                    );
                }
                false
            }
        }
    }

    fn indexed(&mut self, tip: ChainPoint, n: u64, durable: bool, took: Duration) {
        if durable {
            // Durable in redb: as good as in the log, for syncs and for replay.
            let mut s = self.appender.lock();
            s.file_seq = s.file_seq.max(tip.seq);
        }
        let c = &self.shared.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.committed.fetch_add(n, Ordering::Relaxed);
        c.last_batch.store(n, Ordering::Relaxed);
        c.last_commit_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if durable {
            self.synced(tip.seq);
        }
        if self.shared.clear_failure() {
            tracing::warn!(
                seq = tip.seq,
                "audit writes succeed again; accepting records"
            );
        }
        self.shared.committed_seq.send_replace(tip.seq);
        self.head = tip;
    }

    /// Moves the appenders to the other half of the log, makes everything the half they left
    /// holds durable in redb, and frees it. Appenders go on writing throughout.
    fn checkpoint(&mut self) -> Result<(), AuditError> {
        self.last_checkpoint = Instant::now();
        {
            let mut s = self.appender.lock();
            s.checkpoint_asked = false;
            let Some(wal) = &mut s.wal else {
                return Ok(());
            };
            if !wal.other_busy() {
                wal.switch();
            }
        }
        // Everything the left half holds was written before the switch, so this takes it.
        if !self.flush() {
            // The flush set the failure it met.
            return Err(self
                .shared
                .unavailable_error()
                .unwrap_or(AuditError::WriterGone));
        }
        let txn = self.db.begin_write().ctx("begin audit checkpoint")?;
        {
            // Rewriting the head gives the durable commit something to carry; it persists
            // every non-durable commit before it.
            let mut meta = txn.open_table(META).ctx("open audit_meta")?;
            meta.insert(META_HEAD, meta_bytes(&self.head)?.as_slice())
                .ctx("update audit head")?;
        }
        txn.commit().ctx("checkpoint audit records")?;
        {
            let mut s = self.appender.lock();
            if let Some(wal) = &mut s.wal {
                wal.freed();
            }
            s.file_seq = s.file_seq.max(self.head.seq);
        }
        // Whatever the log could not take is durable now too.
        self.synced(self.head.seq);
        Ok(())
    }

    /// The last act of a writer that stops on request: everything durable, then the mark that
    /// says this run ended cleanly (so a decision it left without an outcome was cut by the
    /// stop, not lost in a crash; see `reconcile`).
    fn finish(&mut self) -> Result<(), AuditError> {
        let mut attempts = 0;
        while !self.flush() {
            attempts += 1;
            if attempts > RETRIES_AFTER_SHUTDOWN {
                let (first_seq, last_seq) = self.unindexed.range();
                tracing::error!(
                    first_seq,
                    last_seq,
                    "audit writer giving up at shutdown; these records are lost"
                );
                return Err(AuditError::Unflushed {
                    first_seq,
                    last_seq,
                    reason: self.shared.failure().map(|(r, _)| r).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(50) * attempts);
        }
        // Everything written is in redb now; the durable commit leaves nothing for replay.
        self.checkpoint()?;
        mark_clean_stop(&self.db, &self.head)
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

/// Marks the cores' waiters up to `upto` answered (on disk or refused) and returns the cores
/// still running, for the verdict (a core whose runtime ended is forgotten).
fn live_cores(s: &mut State, upto: u64) -> Vec<Arc<CoreAcks>> {
    s.core_answered = s.core_answered.max(upto);
    s.cores.retain(|c| c.is_alive());
    s.cores.clone()
}

/// The writer goes quiet: the buffers a load grew are given back, so a burst does not leave
/// the daemon holding megabytes it no longer uses. Over the writer's fields, not `&mut
/// Writer`, so it runs while the appenders' lock guard borrows `Writer::appender`.
fn release_idle(s: &mut State, spare: &mut Encoded, unindexed: &mut Unindexed) {
    s.written.release_idle();
    if let Some(wal) = &mut s.wal {
        wal.release_idle();
    }
    spare.release_idle();
    unindexed.release_idle();
}
