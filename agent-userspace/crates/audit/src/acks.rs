//! Answering strict appenders with one cross-thread wakeup per proxy core and sync, not one
//! per record.
//!
//! A strict appender waits on a oneshot for the sync that covers its record. Sent from the
//! writer thread, every answer is a wakeup from another thread: tokio's current-thread
//! runtime takes it through its inject queue and an `eventfd` write, and a context switch when
//! the core was idle in `epoll_wait`. A sync covers several records (group commit), so the
//! proxy cores paid about one `write` and most of a context switch per request for it.
//!
//! On a current-thread runtime (a proxy core) the appender's sender goes instead to its
//! thread's [`CoreAcks`], and a task on that core answers it. The writer hands each core one
//! [`Verdict`] per sync and wakes that task once; the task sends on the oneshots from the
//! core's own thread, which tokio schedules locally, with no syscall. Appenders elsewhere (a
//! multi-thread runtime, a plain thread) keep the sender with the writer, as before.
//!
//! Order: an appender registers here while it holds the appenders' lock, in seq order for its
//! thread; the writer publishes a verdict for `upto` only after it took that lock to mark
//! `upto` synced. So every waiter a verdict covers is registered before the verdict arrives.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::AuditError;

pub(crate) type Ack = oneshot::Sender<Result<u64, AuditError>>;

/// What a sync (or its failure) means for the records up to `upto`.
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub upto: u64,
    /// `None`: on disk. `Some(reason)`: refused (see `Writer::sync_failed`).
    pub failed: Option<String>,
}

impl Verdict {
    pub fn answer(&self, seq: u64) -> Result<u64, AuditError> {
        match &self.failed {
            None => Ok(seq),
            Some(reason) => Err(AuditError::CommitFailed {
                seq,
                reason: reason.clone(),
            }),
        }
    }
}

/// One proxy core's strict waiters for one log.
#[derive(Default)]
pub(crate) struct CoreAcks {
    inner: Mutex<Inner>,
    /// Cleared when the core's answering task ends (its runtime shut down): the writer then
    /// forgets this core, and the thread makes a new one if it runs another runtime.
    alive: AtomicBool,
}

#[derive(Default)]
struct Inner {
    /// Waiters in seq order (one thread appends them, in order).
    waiting: VecDeque<(u64, Ack)>,
    verdicts: Vec<Verdict>,
    /// The writer is gone: every waiter is dropped (its appender sees `WriterGone`).
    closed: bool,
    task: Option<Waker>,
}

impl CoreAcks {
    /// Registers a waiter for `seq`. Call with the appenders' lock held. Returns how many of
    /// the core's appenders still wait for their answer, synced or not.
    pub fn wait(&self, seq: u64, ack: Ack) -> usize {
        let mut s = self.inner.lock();
        s.waiting.push_back((seq, ack));
        s.waiting.len() - 1
    }

    /// Hands the core a verdict if one of its waiters is covered, and wakes its task.
    pub fn deliver(&self, verdict: &Verdict) {
        let task = {
            let mut s = self.inner.lock();
            if s.waiting.front().is_none_or(|(seq, _)| *seq > verdict.upto) {
                return;
            }
            s.verdicts.push(verdict.clone());
            s.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
    }

    /// The writer is gone: drops every waiter, now and later.
    pub fn close(&self) {
        let task = {
            let mut s = self.inner.lock();
            s.closed = true;
            s.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// The core's task: answers waiters as verdicts arrive, on the core's own thread. The
    /// guard is made before the first poll, so a task dropped unpolled (its runtime shut
    /// down) still marks the core dead.
    fn answer(self: Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let dead = Dead(Arc::clone(&self));
        async move {
            let _dead = dead;
            self.answer_loop().await;
        }
    }

    async fn answer_loop(&self) {
        let mut answers = Vec::new();
        loop {
            let closed = std::future::poll_fn(|cx| {
                let mut s = self.inner.lock();
                if s.closed {
                    s.waiting.clear();
                    return Poll::Ready(true);
                }
                for verdict in std::mem::take(&mut s.verdicts) {
                    while let Some((seq, _)) = s.waiting.front()
                        && *seq <= verdict.upto
                    {
                        let (seq, ack) = s.waiting.pop_front().expect("front exists");
                        answers.push((ack, verdict.answer(seq)));
                    }
                }
                if answers.is_empty() {
                    s.task = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(false)
            })
            .await;
            if closed {
                return;
            }
            for (ack, answer) in answers.drain(..) {
                // A waiter that stopped waiting (its request went away) needs no answer.
                drop(ack.send(answer));
            }
        }
    }
}

/// Marks its core dead when the answering task is dropped.
struct Dead(Arc<CoreAcks>);

impl Drop for Dead {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
        // Whatever still waits is dropped: its appender sees `WriterGone`.
        self.0.inner.lock().waiting.clear();
    }
}

thread_local! {
    /// This thread's `CoreAcks`, one per log (keyed by the log's appender).
    static CORES: RefCell<Vec<(u64, Arc<CoreAcks>)>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's `CoreAcks` for the log `key`, made (and its task spawned) on first use,
/// when the thread runs a current-thread runtime. `None` elsewhere: the writer answers.
/// The second value is true when the core is new, for the caller to register with the writer.
pub(crate) fn this_core(key: u64) -> Option<(Arc<CoreAcks>, bool)> {
    let rt = tokio::runtime::Handle::try_current().ok()?;
    if rt.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
        return None;
    }
    CORES.with_borrow_mut(|cores| {
        if let Some((_, core)) = cores.iter().find(|(k, c)| *k == key && c.is_alive()) {
            return Some((Arc::clone(core), false));
        }
        // Only when one is made: entries whose runtime ended go.
        cores.retain(|(_, c)| c.is_alive());
        let core = Arc::new(CoreAcks::default());
        core.alive.store(true, Ordering::Release);
        rt.spawn(Arc::clone(&core).answer());
        cores.push((key, Arc::clone(&core)));
        Some((core, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_verdict_answers_the_waiters_it_covers_in_order_and_no_others() {
        runtime().block_on(async {
            let (core, new) = this_core(1).expect("a current-thread runtime");
            assert!(new);
            let mut rx = Vec::new();
            for seq in [3, 4, 7] {
                let (tx, r) = oneshot::channel();
                core.wait(seq, tx);
                rx.push(r);
            }
            core.deliver(&Verdict {
                upto: 4,
                failed: None,
            });
            let mut rx = rx.into_iter();
            assert_eq!(rx.next().expect("3").await.expect("sent").ok(), Some(3));
            assert_eq!(rx.next().expect("4").await.expect("sent").ok(), Some(4));
            let mut last = rx.next().expect("7");
            tokio::task::yield_now().await;
            assert!(
                last.try_recv().is_err(),
                "7 is not covered by a sync up to 4"
            );
            core.deliver(&Verdict {
                upto: 9,
                failed: Some("disk gone".into()),
            });
            let refused = last.await.expect("sent");
            assert!(matches!(
                refused,
                Err(AuditError::CommitFailed { seq: 7, .. })
            ));
        });
    }

    #[test]
    fn a_closed_core_drops_its_waiters_so_they_see_the_writer_gone() {
        runtime().block_on(async {
            let (core, _) = this_core(2).expect("a current-thread runtime");
            let (tx, rx) = oneshot::channel();
            core.wait(1, tx);
            core.close();
            assert!(rx.await.is_err());
        });
    }

    #[test]
    fn each_runtime_gets_its_own_core_and_a_dead_one_is_replaced() {
        let first = runtime().block_on(async { this_core(3).expect("core").0 });
        // That runtime is gone, and with it the answering task.
        assert!(!first.is_alive());
        runtime().block_on(async {
            let (second, new) = this_core(3).expect("core");
            assert!(new && second.is_alive() && !Arc::ptr_eq(&first, &second));
        });
    }

    #[test]
    fn outside_a_current_thread_runtime_the_writer_answers() {
        assert!(this_core(4).is_none());
        let mt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        assert!(mt.block_on(async { this_core(4) }).is_none());
    }
}
