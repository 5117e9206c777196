//! The append path. The thread that makes a decision records it itself. It encodes the record
//! before taking the lock (`encode::Draft`); under one short lock it takes the next seq and
//! timestamp, hash-chains the record and, in batched mode, writes its frame to the write-ahead
//! log (a `pwrite` into the page cache). Nothing is handed to another thread per record, so a
//! batched request costs no wakeup of the writer thread (`writer.rs`), which only syncs the
//! log and fills redb on its own cadence.
//!
//! What an append must achieve before it returns is its [`Reach`]. An outcome needs none: its
//! frame is queued and goes into the log with the next decision's `pwrite` (one syscall for
//! both) or with the writer's next group, so a batched request pays one `pwrite`, not two.
//!
//! Strict durability adds one wait: the appender registers for the `fdatasync` that covers its
//! seq (with its proxy core's answering task when it runs on one, `acks.rs`), and leaves its
//! frame to the writer, which writes the whole group in one `pwrite` just
//! before that sync (one syscall per group, not per record, and no I/O on the request's
//! thread). The writer is woken only when it is parked; while it syncs, appenders just add
//! themselves to the list, and it writes and syncs again at once for them (group commit),
//! waking every covered waiter when its sync returns.
//!
//! Bounded blocking: the lock is held for a copy and a hash (and, batched, a `pwrite` to
//! allocated, cached pages; the writer holds it for the group's `pwrite` in strict mode)
//! (`benches/cpu.rs` measures it). An appender waiting for the lock is refused
//! (`AuditError::Stalled`) as soon as the holder's write has been in the kernel for
//! [`STALL`] (a failing or saturated disk), and in any case after [`LOCK_WAIT`] (a holder
//! starved of CPU on an overloaded machine is slow, not stalled, so it gets longer). A stalled
//! disk thus costs a request at most about `STALL`, and the request is denied, never let
//! through unrecorded. A write that fails refuses its request and, for a back-off period,
//! every later one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use tokio::sync::oneshot;

use crate::acks::{self, CoreAcks};
use crate::encode::Draft;
use crate::encoded::{Encoded, Hash};
use crate::error::AuditError;
use crate::health::Shared;
use crate::record::{NewRecord, now_micros};
use crate::wal::{Wal, WriteError};

pub(crate) use crate::acks::Ack;
pub(crate) type Waiter = oneshot::Receiver<Result<u64, AuditError>>;

/// A log write in the kernel this long is stalled: appenders waiting behind it give up.
pub(crate) const STALL: Duration = Duration::from_millis(50);
/// The longest an appender waits for the lock at all before it refuses its record.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting appender looks at the holder's write.
const LOCK_SLICE: Duration = Duration::from_millis(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a record was not appended; a full log gives it back (for an outcome's retry).
pub(crate) enum Rejected {
    Full(AuditError),
    Other(AuditError),
}

impl Rejected {
    pub fn into_error(self) -> AuditError {
        match self {
            Rejected::Full(e) | Rejected::Other(e) => e,
        }
    }
}

/// What an append has done by the time it returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reach {
    /// Encoded, chained and queued: the next appender that writes, or the writer, puts its
    /// frame in the log (outcomes; a lost one is marked at the next start).
    Queued,
    /// Its frame is in the log file, behind every frame queued before it (batched decisions:
    /// a daemon crash cannot lose it).
    File,
    /// As `Queued`, plus a receiver that resolves once a sync covers it (strict decisions).
    Synced,
}

/// What the writer thread is doing, as the appenders see it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    Running,
    /// Waiting on the condvar until the given time (`None`: until woken).
    Parked(Option<Instant>),
}

pub(crate) struct State {
    pub next_seq: u64,
    /// The newest record's hash: the next record's `prev_hash`.
    pub head: Hash,
    pub wal: Option<Wal>,
    /// Records written and not yet taken by the writer for redb, in seq order.
    pub written: Encoded,
    /// When the oldest of `written` was written.
    pub written_since: Option<Instant>,
    pub written_seq: u64,
    /// The newest seq whose frame is in the log file (or, after a log write failed, in a
    /// durable redb commit instead).
    pub file_seq: u64,
    /// The newest seq known to be on disk.
    pub synced_seq: u64,
    /// Appenders waiting for a sync, in seq order, that the writer answers itself.
    pub waiters: VecDeque<(u64, Ack)>,
    /// The proxy cores whose tasks answer their own appenders (`acks.rs`).
    pub cores: Vec<Arc<CoreAcks>>,
    /// Appends waiting for a sync since the writer last took a group (`plan::pace_wait`).
    pub sync_asks: u64,
    /// Those of them made while another strict append was still in flight: not yet answered,
    /// or answered but not yet received on its core. A lone connection's never are: it sends
    /// its next request only once its last was answered.
    pub sync_asks_alongside: u64,
    /// The newest seq a core's appender waits for, and the newest a verdict answered.
    pub core_awaited: u64,
    pub core_answered: u64,
    pub writer: Writer,
    /// A checkpoint is wanted before its time (a half of the log is filling).
    pub checkpoint_asked: bool,
    pub closed: bool,
    /// After a failed log write: when the next append may try, and the wait after that.
    pub write_retry: Option<(Instant, Duration)>,
}

thread_local! {
    /// Each appending thread's draft, reused so encoding allocates nothing once warm.
    static DRAFT: std::cell::RefCell<Draft> = std::cell::RefCell::new(Draft::default());
}

/// Numbers appenders, so a thread's answering tasks are told apart by log (`acks::this_core`),
/// even when a new log's appender lands at a dropped one's address.
static APPENDERS: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Appender {
    /// Unique in this process.
    id: u64,
    state: Mutex<State>,
    /// The writer thread parks on this.
    pub wake: Condvar,
    pub shared: Arc<Shared>,
    capacity: usize,
    /// When the lock holder's `pwrite` started, in ns since `epoch`; 0 when none is under way.
    write_started: AtomicU64,
    epoch: Instant,
    /// How long the first record of a group may wait for the writer (`AuditConfig::flush_delay`).
    flush_delay: Duration,
}

impl State {
    /// The writer takes a group: the strict asks made since the last one (how many, returned)
    /// start again from none, and so do those of them made alongside another.
    pub fn take_asks(&mut self) -> u64 {
        self.sync_asks_alongside = 0;
        std::mem::take(&mut self.sync_asks)
    }
}

impl Appender {
    pub fn new(
        shared: Arc<Shared>,
        capacity: usize,
        head_seq: u64,
        head: Hash,
        wal: Option<Wal>,
        flush_delay: Duration,
    ) -> Appender {
        Appender {
            id: APPENDERS.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State {
                next_seq: head_seq + 1,
                head,
                wal,
                written: Encoded::default(),
                written_since: None,
                written_seq: head_seq,
                file_seq: head_seq,
                synced_seq: head_seq,
                waiters: VecDeque::new(),
                cores: Vec::new(),
                sync_asks: 0,
                sync_asks_alongside: 0,
                core_awaited: head_seq,
                core_answered: head_seq,
                writer: Writer::Running,
                checkpoint_asked: false,
                closed: false,
                write_retry: None,
            }),
            wake: Condvar::new(),
            shared,
            capacity,
            write_started: AtomicU64::new(0),
            epoch: Instant::now(),
            flush_delay,
        }
    }

    /// Marks a log write under way (or over), for appenders waiting behind it (`STALL`).
    pub fn writing(&self, under_way: bool) {
        let at = if under_way { self.since_epoch_ns() } else { 0 };
        self.write_started.store(at, Ordering::Release);
    }

    fn since_epoch_ns(&self) -> u64 {
        // Never 0, which means "no write under way"; u64 ns last 584 years.
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The lock, unless the holder's write has stalled for `STALL` or `LOCK_WAIT` passed.
    fn lock_bounded(&self) -> Result<MutexGuard<'_, State>, AuditError> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.state.try_lock_for(LOCK_SLICE) {
                return Ok(s);
            }
            let write = self.write_started.load(Ordering::Acquire);
            let stalled = write != 0
                && self.since_epoch_ns().saturating_sub(write) >= STALL.as_nanos() as u64;
            if stalled || started.elapsed() >= LOCK_WAIT {
                return Err(AuditError::Stalled {
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
        }
    }

    /// For the writer thread, which may wait for it.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Encodes `rec` under the next seq and takes it as far as `reach` says. `Synced` also
    /// returns the receiver that resolves once a sync covers it.
    pub fn append(&self, rec: &NewRecord, reach: Reach) -> Result<(u64, Option<Waiter>), Rejected> {
        DRAFT.with_borrow_mut(|draft| {
            // Before the lock: only the chain's fields are left for under it.
            draft.encode(rec);
            let appended = self.append_draft(draft, reach);
            draft.shrink();
            appended
        })
    }

    fn append_draft(&self, draft: &Draft, reach: Reach) -> Result<(u64, Option<Waiter>), Rejected> {
        let ack = (reach == Reach::Synced).then(oneshot::channel);
        let mut s = self.lock_bounded().map_err(Rejected::Other)?;
        self.admit(&mut s)?;
        let seq = s.next_seq;
        let now = Instant::now();
        let st = &mut *s;
        st.written
            .push_draft(seq, &now_micros(), draft, st.head.as_str());
        if reach == Reach::File && st.wal.is_some() {
            let asked = st.checkpoint_asked;
            // With it, the frames queued before it: the log holds seqs in order.
            if let Err(e) = self.write_out(st) {
                st.written.pop();
                return Err(self.write_failed(st, seq, e));
            }
            if st.checkpoint_asked && !asked {
                self.wake_writer(st);
            }
        }
        if st.write_retry.take().is_some() && self.shared.clear_failure() {
            tracing::warn!(seq, "audit log writes succeed again; accepting records");
        }
        if let Some(head) = st.written.last_hash() {
            st.head = head;
        }
        st.next_seq += 1;
        st.written_seq = seq;
        let first = st.written_since.is_none();
        st.written_since.get_or_insert(now);
        self.shared.depth.store(st.written.len(), Ordering::Relaxed);
        self.shared
            .counters
            .appended
            .fetch_add(1, Ordering::Relaxed);
        // Readers that want what appenders were told is recorded wait for redb to get here.
        self.shared.acked_seq.store(seq, Ordering::Release);
        let waiter = ack.map(|(tx, rx)| {
            st.sync_asks += 1;
            let unanswered = !st.waiters.is_empty() || st.core_awaited > st.core_answered;
            let unreceived = match acks::this_core(self.id) {
                Some((core, new)) => {
                    if new {
                        st.cores.retain(|c| c.is_alive());
                        st.cores.push(Arc::clone(&core));
                    }
                    st.core_awaited = seq;
                    core.wait(seq, tx)
                }
                None => {
                    st.waiters.push_back((seq, tx));
                    0
                }
            };
            if unanswered || unreceived > 0 {
                st.sync_asks_alongside += 1;
            }
            rx
        });
        // Only what the writer must act on wakes it: a waiter (if it is parked; a running
        // writer syncs again before it parks), the first record of a group when the writer
        // sleeps past its index time, a half-full buffer.
        let late = first
            && matches!(st.writer, Writer::Parked(until) if until.is_none_or(|u| u > now + self.flush_delay));
        let crowded = st.written.len() * 2 >= self.capacity;
        if waiter.is_some() || late || crowded {
            self.wake_writer(st);
        }
        Ok((seq, waiter))
    }

    /// Writes the frames of records not yet in the log (queued ones, and in strict mode the
    /// whole group, in one `pwrite` per half) and moves `file_seq` past them; asks for a
    /// checkpoint once a half is past its middle or the write moved to the other half. `Full`
    /// also when records before them were taken for redb without reaching the file: those
    /// must become durable there first.
    pub fn write_out(&self, st: &mut State) -> Result<(), WriteError> {
        let Some(wal) = &mut st.wal else {
            return Ok(());
        };
        let from = st.file_seq;
        // An appender writes before it counts its own record in `written_seq`.
        let newest = st
            .written
            .last_seq()
            .map_or(st.written_seq, |l| l.max(st.written_seq));
        if newest <= from {
            return Ok(());
        }
        if st.written.first_seq().is_none_or(|first| first > from + 1) {
            return Err(WriteError::Full);
        }
        let busy = wal.other_busy();
        self.writing(true);
        let (n, result) = wal.write_many(st.written.after(from));
        self.writing(false);
        st.file_seq = from + n as u64;
        if result.is_err() || wal.other_busy() != busy || wal.used() * 2 > wal.half_len() {
            st.checkpoint_asked = true;
        }
        result
    }

    /// Refuses when closed, failing, in a write back-off, or full.
    fn admit(&self, s: &mut State) -> Result<(), Rejected> {
        if s.closed {
            return Err(Rejected::Other(AuditError::Closed));
        }
        let c = &self.shared.counters;
        let backing_off = s.write_retry.is_some_and(|(at, _)| Instant::now() < at);
        // A write failure lets one append try again once its back-off has passed.
        if backing_off || (s.write_retry.is_none() && self.shared.failure().is_some()) {
            c.rejected_unavailable.fetch_add(1, Ordering::Relaxed);
            if let Some(err) = self.shared.unavailable_error() {
                return Err(Rejected::Other(err));
            }
        }
        if s.written.len() >= self.capacity {
            let n = c.rejected_full.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    capacity = self.capacity,
                    rejected_total = n,
                    "audit records wait for the writer; refusing records (proxy denies)"
                );
            }
            return Err(Rejected::Full(AuditError::QueueFull {
                capacity: self.capacity,
            }));
        }
        Ok(())
    }

    /// A record the log could not take: refused, and (for an I/O error) later ones too for a
    /// back-off period.
    fn write_failed(&self, s: &mut State, seq: u64, e: WriteError) -> Rejected {
        match e {
            WriteError::Full => {
                self.shared
                    .counters
                    .rejected_full
                    .fetch_add(1, Ordering::Relaxed);
                self.wake_writer(s);
                Rejected::Full(AuditError::QueueFull {
                    capacity: self.capacity,
                })
            }
            WriteError::Io(e) => {
                let reason = e.to_string();
                let wait = s
                    .write_retry
                    .map_or(FIRST_BACKOFF, |(_, w)| (w * 2).min(MAX_BACKOFF));
                s.write_retry = Some((Instant::now() + wait, wait));
                self.shared.set_failure(&reason);
                self.shared
                    .counters
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(seq, error = %reason, "audit log write failed; refusing records");
                Rejected::Other(AuditError::CommitFailed { seq, reason })
            }
        }
    }

    /// Wakes the writer if it is parked, once: it counts as running until it parks again.
    pub fn wake_writer(&self, s: &mut State) {
        if matches!(s.writer, Writer::Parked(_)) {
            s.writer = Writer::Running;
            self.shared
                .counters
                .writer_wakeups
                .fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Refuses new records; the writer finishes what is written, then stops.
    pub fn close(&self) {
        let mut s = self.state.lock();
        s.closed = true;
        self.wake_writer(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::GENESIS_HASH;
    use crate::record::EventKind;

    fn appender(wal: Option<Wal>) -> Appender {
        let head = Hash::from_hex(GENESIS_HASH).expect("genesis");
        let delay = Duration::from_millis(20);
        Appender::new(Arc::new(Shared::new(64, 0)), 64, 0, head, wal, delay)
    }

    fn rec() -> NewRecord {
        let mut r = NewRecord::new(EventKind::Request);
        r.action = Some("github.issue.create".into());
        r
    }

    /// Holds the lock on another thread (as an appender would while it writes), with or
    /// without a write marked under way, until the returned barrier is passed.
    fn hold(
        a: &Arc<Appender>,
        writing: bool,
    ) -> (std::thread::JoinHandle<()>, Arc<std::sync::Barrier>) {
        let (held, release) = (
            Arc::new(std::sync::Barrier::new(2)),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let holder = {
            let (a, held, release) = (Arc::clone(a), Arc::clone(&held), Arc::clone(&release));
            std::thread::spawn(move || {
                let _s = a.lock();
                if writing {
                    a.write_started.store(a.since_epoch_ns(), Ordering::Release);
                }
                held.wait();
                release.wait();
                a.write_started.store(0, Ordering::Release);
            })
        };
        held.wait();
        (holder, release)
    }

    #[test]
    fn a_strict_append_counts_as_alongside_only_while_another_is_unanswered() {
        let a = appender(None);
        let asks = |a: &Appender| {
            let s = a.lock();
            (s.sync_asks, s.sync_asks_alongside)
        };
        // One at a time: each answered (the writer drains its waiter) before the next.
        for _ in 0..3 {
            let Ok((_, Some(_waiter))) = a.append(&rec(), Reach::Synced) else {
                panic!("a strict append waits");
            };
            a.lock().waiters.clear();
        }
        assert_eq!(
            asks(&a),
            (3, 0),
            "a lone appender is never alongside another"
        );
        // Two in flight: the second came alongside the first.
        let first = a.append(&rec(), Reach::Synced);
        let second = a.append(&rec(), Reach::Synced);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(asks(&a), (5, 1));
    }

    #[test]
    fn appenders_behind_a_stalled_write_are_refused_after_the_stall_bound() {
        let a = Arc::new(appender(None));
        let (holder, release) = hold(&a, true);
        let started = Instant::now();
        let got = a.append(&rec(), Reach::File);
        let waited = started.elapsed();
        release.wait();
        holder.join().expect("holder");
        assert!(
            matches!(got, Err(Rejected::Other(AuditError::Stalled { .. }))),
            "a stalled log refuses"
        );
        assert!(waited >= STALL && waited < LOCK_WAIT, "{waited:?}");
        assert!(matches!(a.append(&rec(), Reach::File), Ok((1, None))));
    }

    #[test]
    fn a_slow_holder_not_in_a_write_is_waited_for_up_to_the_hard_bound() {
        let a = Arc::new(appender(None));
        let (holder, release) = hold(&a, false);
        let started = Instant::now();
        let got = a.append(&rec(), Reach::File);
        let waited = started.elapsed();
        release.wait();
        holder.join().expect("holder");
        assert!(matches!(
            got,
            Err(Rejected::Other(AuditError::Stalled { .. }))
        ));
        assert!(waited >= LOCK_WAIT && waited < LOCK_WAIT * 3, "{waited:?}");
    }

    #[test]
    fn a_failed_log_write_refuses_its_record_and_later_ones_until_a_retry_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(&dir.path().join("audit.wal"), 64 * 1024).expect("wal");
        wal.reopen_for_test(false);
        let a = appender(Some(wal));
        match a.append(&rec(), Reach::File) {
            Err(Rejected::Other(AuditError::CommitFailed { seq: 1, reason })) => {
                assert!(reason.contains("write"), "{reason}");
            }
            _ => panic!("a write error is the record's refusal"),
        }
        assert!(!a.shared.health().is_healthy());
        assert!(
            matches!(
                a.append(&rec(), Reach::File),
                Err(Rejected::Other(AuditError::Unavailable { .. }))
            ),
            "later records are refused while the write backs off"
        );
        if let Some(wal) = &mut a.lock().wal {
            wal.reopen_for_test(true);
        }
        std::thread::sleep(FIRST_BACKOFF);
        // The refused record did not use its seq.
        assert!(matches!(a.append(&rec(), Reach::File), Ok((1, None))));
        assert!(a.shared.health().is_healthy());
        assert_eq!(a.lock().written.len(), 1);
    }

    #[test]
    fn a_queued_record_reaches_the_log_in_the_next_decisions_write_in_seq_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(&dir.path().join("audit.wal"), 64 * 1024).expect("wal");
        let a = appender(Some(wal));
        assert!(matches!(a.append(&rec(), Reach::Queued), Ok((1, None))));
        {
            let s = a.lock();
            assert_eq!(s.file_seq, 0, "an outcome is not written on its own");
            assert_eq!(s.wal.as_ref().map(Wal::used), Some(0));
        }
        assert!(matches!(a.append(&rec(), Reach::File), Ok((2, None))));
        let s = a.lock();
        assert_eq!(
            s.file_seq, 2,
            "the decision's write took the queued frame too"
        );
        let frames: Vec<(u64, usize)> = s.written.iter().map(|(q, b)| (q, b.len())).collect();
        let framed: usize = frames.iter().map(|(_, len)| crate::wal::HEADER + len).sum();
        assert_eq!(s.wal.as_ref().map(Wal::used), Some(framed as u64));
        // Frame: len u32 | crc u32 | seq u64 | bytes, one after the other from the start.
        let mut file = vec![0u8; framed];
        let wal = s.wal.as_ref().expect("wal");
        std::os::unix::fs::FileExt::read_exact_at(wal.file_for_test(), &mut file, 0).expect("read");
        let mut at = 0;
        for (seq, len) in frames {
            let got = u64::from_le_bytes(file[at + 8..at + 16].try_into().expect("seq"));
            assert_eq!(got, seq);
            at += crate::wal::HEADER + len;
        }
    }
}
