//! Stopping without hanging agents: the daemon stops accepting, lets the
//! requests in progress finish for a bounded time (HTTP connections close
//! after their current answer), then cuts whatever is left, so an agent's
//! request ends with its answer or a closed connection, never a hang.
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::proxy::live::Connections;

/// How long requests in progress get to finish. A request held for a
/// human's approval, a long download or a spliced stream is cut after it.
pub const BOUND: Duration = Duration::from_secs(10);
/// How long cut connections get to close before the daemon goes on.
const AFTER_CUT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);

/// What a drain did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections open when the drain began.
    pub open: usize,
    /// Connections cut at the bound.
    pub cut: usize,
    /// Connections still open after the cut (closed when the process ends).
    pub left: usize,
    pub took: Duration,
}

/// Stops the accept loops in `serving` (their sockets stay open where
/// the caller holds another handle, as an upgrade does), then drains.
/// `serving` holds every proxy core's accept loops (each on its core's
/// runtime) and `conns` is the one registry all cores register in, so the
/// drain covers every core.
pub async fn drain(conns: &Connections, serving: &[JoinHandle<()>], bound: Duration) -> Drained {
    for task in serving {
        task.abort();
    }
    let started = Instant::now();
    let open = conns.in_flight();
    conns.begin_drain();
    let done = wait_until_idle(conns, bound).await;
    let mut cut = 0;
    if !done {
        cut = conns.cancel_where(|_| true);
        wait_until_idle(conns, AFTER_CUT).await;
    }
    Drained {
        open,
        cut,
        left: conns.in_flight(),
        took: started.elapsed(),
    }
}

async fn wait_until_idle(conns: &Connections, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while conns.in_flight() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cgroup::AgentPath;

    fn agent() -> AgentPath {
        AgentPath::from_rel(std::path::Path::new("bot/i1")).expect("agent path")
    }

    #[tokio::test]
    async fn a_connection_that_finishes_within_the_bound_is_not_cut() {
        let conns = Arc::new(Connections::default());
        let held = conns.accepted();
        let reg = Arc::clone(&conns);
        let finishing = tokio::spawn(async move {
            let guard = reg.register(&agent());
            reg.draining().await;
            // The answer in progress goes out, then the connection closes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
            drop(held);
        });
        let report = drain(&conns, &[], Duration::from_secs(5)).await;
        finishing.await.unwrap();
        assert_eq!((report.open, report.cut, report.left), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_connection_still_open_at_the_bound_is_cut() {
        let conns = Arc::new(Connections::default());
        let reg = Arc::clone(&conns);
        let stuck = tokio::spawn(async move {
            let held = reg.accepted();
            let guard = reg.register(&agent());
            // Only the kill switch's trip ends it, as in conn.rs.
            guard.cut.wait().await;
            drop(guard);
            drop(held);
        });
        tokio::task::yield_now().await;
        while conns.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let report = drain(&conns, &[], Duration::from_millis(100)).await;
        stuck.await.unwrap();
        assert_eq!((report.open, report.cut, report.left), (1, 1, 0));
        assert!(report.took >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn accept_loops_on_other_cores_runtimes_stop_when_the_drain_begins() {
        let conns = Connections::default();
        let mut cores = Vec::new();
        let mut loops = Vec::new();
        for _ in 0..2 {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            loops.push(rt.spawn(std::future::pending::<()>()));
            let stop = tokio_util::sync::CancellationToken::new();
            let stopped = stop.clone();
            let thread = std::thread::spawn(move || rt.block_on(stopped.cancelled()));
            cores.push((stop, thread));
        }
        drain(&conns, &loops, BOUND).await;
        for l in loops {
            assert!(l.await.unwrap_err().is_cancelled());
        }
        for (stop, thread) in cores {
            stop.cancel();
            thread.join().unwrap();
        }
    }

    #[tokio::test]
    async fn accept_loops_stop_when_the_drain_begins() {
        let conns = Connections::default();
        let accept = tokio::spawn(std::future::pending::<()>());
        let report = drain(&conns, std::slice::from_ref(&accept), BOUND).await;
        assert!(accept.await.unwrap_err().is_cancelled());
        assert_eq!(report.open, 0);
    }
}
