//! The bounded queue between appenders and the writer thread.
//!
//! Appenders push under the one lock that also hands out seqs, so queue order is seq order.
//! Only a record the writer should start on at once wakes it: a decision (its appender may be
//! waiting, and in every mode it should reach the log promptly). An outcome wakes nobody: it
//! rides with the next decision's group, or is taken within [`OUTCOME_DELAY`] when none comes.
//! Under load that saves a wakeup, a write and a loop of the writer per forwarded request,
//! which is most of what an outcome record costs (`cargo xtask bench`, `cordon-no-outcomes`).
//!
//! Outcomes queued with [`Queue::push_unnumbered`] (nobody needs their seq) wait in a lane of
//! their own and are numbered when the writer takes them, after every numbered record queued
//! by then. A group is therefore its decisions first and its outcomes last, and the writer
//! syncs and acknowledges the decisions before it writes the outcomes (`Writer::commit_split`):
//! a waiting request never waits for other requests' outcomes to be encoded and written.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::record::{EventKind, now_micros};
use crate::writer::Pending;

/// The longest an outcome waits in the queue for a decision to ride with. The writer's redb
/// insert is due as late, so an outcome becomes readable no later than it did before.
pub(crate) const OUTCOME_DELAY: Duration = Duration::from_millis(20);

pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

struct State {
    next_seq: u64,
    /// Records with their seq, in seq order.
    items: VecDeque<Pending>,
    /// Outcomes without a seq yet, in the order they came; numbered by [`drain`].
    unnumbered: VecDeque<Pending>,
    /// Queued records that wake the writer (see [`wakes`]).
    urgent: usize,
    /// When the records that did not wake the writer are due: `OUTCOME_DELAY` after the
    /// oldest of them was queued.
    quiet_due: Option<Instant>,
    /// The writer is waiting on `ready`, and until when (`None`: until woken).
    parked: bool,
    parked_until: Option<Instant>,
    closed: bool,
}

/// Why a record was not queued; a full queue gives it back.
pub(crate) enum Refused {
    Full(Box<Pending>),
    Closed,
}

/// What the writer gets from [`Queue::take`].
pub(crate) enum Taken {
    /// Records in seq order, at most the asked-for number.
    Batch(Vec<Pending>),
    /// The writer's own deadline passed first (maintenance is due).
    Timer,
    /// Closed and empty: the writer is done.
    Closed,
}

/// Whether queuing `p` wakes the writer: everything but an outcome.
fn wakes(p: &Pending) -> bool {
    p.rec.kind != EventKind::Outcome
}

impl Queue {
    pub fn new(capacity: usize, next_seq: u64) -> Queue {
        Queue {
            state: Mutex::new(State {
                next_seq,
                items: VecDeque::new(),
                unnumbered: VecDeque::new(),
                urgent: 0,
                quiet_due: None,
                parked: false,
                parked_until: None,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `p` the next seq and the current time and queues it. Returns its seq.
    pub fn push(&self, p: Pending) -> Result<u64, Refused> {
        let mut s = self.lock();
        let mut p = self.admit(&s, p)?;
        let seq = s.next_seq;
        p.seq = seq;
        p.ts = now_micros();
        s.next_seq += 1;
        let urgent = wakes(&p);
        s.items.push_back(p);
        self.queued(&mut s, urgent);
        Ok(seq)
    }

    /// Queues an outcome whose seq (and timestamp) are given when the writer takes it.
    pub fn push_unnumbered(&self, p: Pending) -> Result<(), Refused> {
        let mut s = self.lock();
        let p = self.admit(&s, p)?;
        let urgent = wakes(&p);
        s.unnumbered.push_back(p);
        self.queued(&mut s, urgent);
        Ok(())
    }

    /// Refuses `p` when the queue is closed or full (giving a full queue's record back).
    fn admit(&self, s: &State, p: Pending) -> Result<Pending, Refused> {
        if s.closed {
            return Err(Refused::Closed);
        }
        if s.items.len() + s.unnumbered.len() >= self.capacity {
            return Err(Refused::Full(Box::new(p)));
        }
        Ok(p)
    }

    /// Wakes a parked writer when the record just queued needs it.
    fn queued(&self, s: &mut State, urgent: bool) {
        // A parked writer sleeping past the new outcome's due time must hear of it.
        let mut late = false;
        if urgent {
            s.urgent += 1;
        } else if s.quiet_due.is_none() {
            let due = Instant::now() + OUTCOME_DELAY;
            s.quiet_due = Some(due);
            late = s.parked_until.is_none_or(|until| until > due);
        }
        // Half full: take it now rather than refuse records later.
        let crowded = (s.items.len() + s.unnumbered.len()) * 2 >= self.capacity;
        if s.parked && (urgent || late || crowded) {
            s.parked = false;
            self.ready.notify_one();
        }
    }

    /// Refuses new records; the writer drains what is queued, then gets `Taken::Closed`.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        self.ready.notify_all();
    }

    /// Waits until there is something to write (a record that wakes, an outcome older than
    /// `OUTCOME_DELAY`, or anything once closed) and takes up to `max` records, or until
    /// `deadline` passes.
    pub fn take(&self, max: usize, deadline: Option<Instant>) -> Taken {
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            let queued = !s.items.is_empty() || !s.unnumbered.is_empty();
            if s.urgent > 0 || (s.closed && queued) {
                return Taken::Batch(drain(&mut s, max, now));
            }
            if s.closed {
                return Taken::Closed;
            }
            // The writer's own work first: an index insert due now should not find an
            // outcome group just written and have to sync it.
            if deadline.is_some_and(|d| d <= now) {
                return Taken::Timer;
            }
            let quiet_due = s.quiet_due;
            if quiet_due.is_some_and(|d| d <= now) {
                return Taken::Batch(drain(&mut s, max, now));
            }
            let wake = [deadline, quiet_due].into_iter().flatten().min();
            s.parked = true;
            s.parked_until = wake;
            s = match wake {
                None => self.ready.wait(s).unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    self.ready
                        .wait_timeout(s, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            s.parked = false;
        }
    }

    /// Batched durability without a log: waits until `until` (or until `max` records are
    /// queued, or the queue closes) and takes up to `max` more.
    pub fn take_until(&self, max: usize, until: Instant) -> Vec<Pending> {
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            if s.items.len() + s.unnumbered.len() >= max || s.closed || until <= now {
                return drain(&mut s, max, now);
            }
            s.parked = true;
            s.parked_until = Some(until);
            s = self
                .ready
                .wait_timeout(s, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            s.parked = false;
        }
    }
}

/// Takes up to `max` records: the numbered ones first, then, when all of those fit, the
/// unnumbered outcomes, which take the next seqs and the current time here.
fn drain(s: &mut State, max: usize, now: Instant) -> Vec<Pending> {
    let n = s.items.len().min(max);
    let mut out = Vec::with_capacity(n);
    for p in s.items.drain(..n) {
        if wakes(&p) {
            s.urgent -= 1;
        }
        out.push(p);
    }
    if s.items.is_empty() {
        let more = s.unnumbered.len().min(max - n);
        let ts = now_micros();
        for mut p in s.unnumbered.drain(..more) {
            if wakes(&p) {
                s.urgent -= 1;
            }
            p.seq = s.next_seq;
            p.ts = ts;
            s.next_seq += 1;
            out.push(p);
        }
    }
    // What is left (more than `max` were queued) is due at once.
    let left = !s.items.is_empty() || !s.unnumbered.is_empty();
    s.quiet_due = left.then_some(now);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NewRecord;
    use chrono::DateTime;
    use std::sync::Arc;

    fn pending(kind: EventKind) -> Pending {
        Pending {
            seq: 0,
            ts: DateTime::UNIX_EPOCH,
            rec: NewRecord::new(kind),
            ack: None,
            awaited: false,
        }
    }

    fn seqs(taken: Taken) -> Vec<u64> {
        match taken {
            Taken::Batch(b) => b.iter().map(|p| p.seq).collect(),
            Taken::Timer => panic!("timer, not a batch"),
            Taken::Closed => panic!("closed, not a batch"),
        }
    }

    #[test]
    fn an_unnumbered_outcome_waits_for_the_next_decision_and_is_numbered_after_it() {
        let q = Queue::new(64, 10);
        assert!(q.push_unnumbered(pending(EventKind::Outcome)).is_ok());
        let soon = Instant::now() + Duration::from_millis(2);
        assert!(matches!(q.take(64, Some(soon)), Taken::Timer));
        assert!(matches!(q.push(pending(EventKind::Request)), Ok(10)));
        assert!(matches!(q.push(pending(EventKind::Request)), Ok(11)));
        let Taken::Batch(batch) = q.take(64, None) else {
            panic!("a batch")
        };
        let kinds: Vec<(u64, EventKind)> = batch.iter().map(|p| (p.seq, p.rec.kind)).collect();
        assert_eq!(
            kinds,
            [
                (10, EventKind::Request),
                (11, EventKind::Request),
                (12, EventKind::Outcome)
            ]
        );
        assert!(batch[2].ts >= batch[1].ts, "timestamps follow seqs");
        assert!(matches!(q.push(pending(EventKind::Request)), Ok(13)));
    }

    #[test]
    fn unnumbered_outcomes_wait_until_every_numbered_record_before_them_is_taken() {
        let q = Queue::new(64, 1);
        for _ in 0..3 {
            assert!(q.push(pending(EventKind::Request)).is_ok());
        }
        assert!(q.push_unnumbered(pending(EventKind::Outcome)).is_ok());
        assert_eq!(seqs(q.take(2, None)), [1, 2]);
        // The rest is due at once: the last decision, then the outcome numbered after it.
        assert_eq!(seqs(q.take(1, None)), [3]);
        assert_eq!(seqs(q.take(8, None)), [4]);
    }

    #[test]
    fn unnumbered_outcomes_count_against_the_capacity_and_are_drained_at_close() {
        let q = Queue::new(2, 1);
        assert!(q.push_unnumbered(pending(EventKind::Outcome)).is_ok());
        assert!(q.push(pending(EventKind::Request)).is_ok());
        assert!(matches!(
            q.push_unnumbered(pending(EventKind::Outcome)),
            Err(Refused::Full(_))
        ));
        q.close();
        assert_eq!(seqs(q.take(8, None)), [1, 2]);
        assert!(matches!(q.take(8, None), Taken::Closed));
    }

    #[test]
    fn an_outcome_waits_for_the_next_decision_and_goes_with_it_in_seq_order() {
        let q = Queue::new(64, 10);
        assert!(matches!(q.push(pending(EventKind::Outcome)), Ok(10)));
        let soon = Instant::now() + Duration::from_millis(2);
        assert!(matches!(q.take(64, Some(soon)), Taken::Timer));
        assert!(matches!(q.push(pending(EventKind::Request)), Ok(11)));
        assert_eq!(seqs(q.take(64, None)), [10, 11]);
    }

    #[test]
    fn an_outcome_alone_is_taken_once_it_has_waited_its_delay() {
        let q = Queue::new(64, 1);
        let queued = Instant::now();
        assert!(q.push(pending(EventKind::Outcome)).is_ok());
        assert_eq!(seqs(q.take(64, None)), [1]);
        assert!(queued.elapsed() >= OUTCOME_DELAY);
    }

    #[test]
    fn a_decision_wakes_a_parked_writer_at_once() {
        let q = Arc::new(Queue::new(64, 1));
        let writer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || seqs(q.take(64, None)))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(q.push(pending(EventKind::Request)).is_ok());
        assert_eq!(writer.join().expect("writer thread"), [1]);
    }

    #[test]
    fn a_full_queue_gives_the_record_back_and_a_closed_one_refuses() {
        let q = Queue::new(1, 1);
        assert!(q.push(pending(EventKind::Outcome)).is_ok());
        assert!(matches!(
            q.push(pending(EventKind::Request)),
            Err(Refused::Full(p)) if p.rec.kind == EventKind::Request
        ));
        q.close();
        // What was queued before the close is still handed over, then the end.
        assert_eq!(seqs(q.take(8, None)), [1]);
        assert!(matches!(q.take(8, None), Taken::Closed));
        assert!(matches!(
            q.push(pending(EventKind::Request)),
            Err(Refused::Closed)
        ));
    }

    #[test]
    fn more_than_a_batch_is_taken_in_order_over_several_takes() {
        let q = Queue::new(64, 1);
        for _ in 0..5 {
            assert!(q.push(pending(EventKind::Request)).is_ok());
        }
        assert_eq!(seqs(q.take(3, None)), [1, 2, 3]);
        assert_eq!(seqs(q.take(3, None)), [4, 5]);
    }
}
