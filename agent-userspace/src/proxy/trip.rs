//! A one-way switch a connection's task waits on beside its traffic: its
//! kill (the kill switch cuts it) and the daemon's drain.
//!
//! Why not `CancellationToken`: each connection's task selects over its
//! hyper connection and these waits, and `select!` polls every branch each
//! time the task wakes. A `WaitForCancellationFuture` takes two mutexes per
//! poll (the token's `is_cancelled` and its `Notify`'s waiter list), and the
//! drain token is one for the whole daemon, so every wakeup of every
//! connection on every core took the same locks: about 1% of the daemon's
//! CPU under keep-alive load. Here a poll reads an atomic flag, and the wait
//! registers with the `Notify` only when first polled or polled through a
//! different waker (a tokio task wakes through the same waker every time).

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll, Waker},
};

use tokio::sync::{Notify, futures::Notified};

#[derive(Default)]
pub struct Trip {
    tripped: AtomicBool,
    notify: Notify,
}

impl Trip {
    /// Trips it for good and wakes every wait.
    pub fn trip(&self) {
        // The flag first: a wait that registers after the wakeups went out
        // reads it.
        self.tripped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Resolves once tripped (at once if it already is).
    pub fn wait(&self) -> TripWait<'_> {
        TripWait {
            trip: self,
            // Created now: `notify_waiters` completes a `Notified` created
            // before it, polled or not.
            notified: self.notify.notified(),
            registered: None,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TripWait<'a> {
        trip: &'a Trip,
        #[pin]
        notified: Notified<'a>,
        // The waker the wait is registered with.
        registered: Option<Waker>,
    }
}

impl Future for TripWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.trip.is_tripped() {
            return Poll::Ready(());
        }
        if this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        if this.notified.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        *this.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use futures::task::{ArcWake, waker};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl ArcWake for Count {
        fn wake_by_ref(me: &Arc<Self>) {
            me.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(w: &mut Pin<&mut TripWait<'_>>, by: &Waker) -> Poll<()> {
        w.as_mut().poll(&mut Context::from_waker(by))
    }

    #[test]
    fn a_trip_after_many_polls_wakes_the_task_and_resolves() {
        let trip = Trip::default();
        let wait = trip.wait();
        let mut wait = std::pin::pin!(wait);
        let count = Arc::new(Count::default());
        let task = waker(count.clone());
        for _ in 0..5 {
            assert!(poll(&mut wait, &task).is_pending());
        }
        trip.trip();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken once");
        assert!(poll(&mut wait, &task).is_ready());
    }

    #[test]
    fn a_wait_polled_through_another_waker_wakes_that_one() {
        let trip = Trip::default();
        let wait = trip.wait();
        let mut wait = std::pin::pin!(wait);
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert!(poll(&mut wait, &waker(first.clone())).is_pending());
        assert!(poll(&mut wait, &waker(second.clone())).is_pending());
        trip.trip();
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the newest waker was woken"
        );
        assert!(poll(&mut wait, &waker(second)).is_ready());
    }

    #[test]
    fn a_wait_made_before_the_trip_but_first_polled_after_it_resolves() {
        let trip = Trip::default();
        let wait = trip.wait();
        trip.trip();
        let mut wait = std::pin::pin!(wait);
        assert!(poll(&mut wait, &waker(Arc::new(Count::default()))).is_ready());
        let late = trip.wait();
        let mut late = std::pin::pin!(late);
        assert!(poll(&mut late, &waker(Arc::new(Count::default()))).is_ready());
    }

    #[tokio::test]
    async fn a_task_waiting_on_another_thread_is_released_by_a_trip() {
        let trip = Arc::new(Trip::default());
        let waiting = tokio::spawn({
            let trip = trip.clone();
            async move { trip.wait().await }
        });
        tokio::task::yield_now().await;
        std::thread::spawn({
            let trip = trip.clone();
            move || trip.trip()
        })
        .join()
        .expect("tripping thread");
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("released")
            .expect("task");
    }
}
