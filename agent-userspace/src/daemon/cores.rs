//! Thread per core: the proxy runs on `[proxy] cores` OS threads, each
//! driving a current-thread tokio runtime of its own, accepting on its own
//! listener pair of the port's reuseport group (`listeners`), with its own
//! upstream pools and leaf-cache shard (`env::CoreParts`). A connection
//! lives on the core that accepted it until it closes: no task migrates,
//! no wakeup crosses to another worker on the request path.
//!
//! What must be one for the whole daemon stays shared through `Shared`:
//! the policy snapshot (read-only, swapped whole), caps, the live
//! connections the kill switch and the drain cut (`proxy::live`),
//! approvals, the audit log. Cancelling a connection from another thread
//! (the control thread's kill, the main runtime's drain) wakes its task on
//! its own core.
use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Shared, env::CoreParts, listeners::ProxyPair};
use crate::proxy;

/// How long a stopping core waits for its blocking tasks.
const SHUTDOWN: Duration = Duration::from_secs(1);
/// The period of the timer every core keeps armed (`anchor_timers`); under the HTTP/1
/// head-read timeout (30 s), so every per-connection timer falls after it.
const ANCHOR: Duration = Duration::from_secs(10);

/// Which listener pairs each core accepts on: pair `i` on core
/// `i % cores`, so every pair has a core accepting on it, even when an
/// image with more cores handed over more pairs than this one has cores (a
/// pair nobody accepts on would strand the connects the kernel gives it).
/// With fewer pairs than cores, core `c` shares pair `c % pairs`.
pub fn spread(pairs: usize, cores: usize) -> Vec<Vec<usize>> {
    let cores = cores.max(1);
    let mut by_core = vec![Vec::new(); cores];
    if pairs == 0 {
        return by_core;
    }
    if pairs >= cores {
        for i in 0..pairs {
            by_core[i % cores].push(i);
        }
    } else {
        for (c, own) in by_core.iter_mut().enumerate() {
            own.push(c % pairs);
        }
    }
    by_core
}

struct CoreThread {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

/// The running cores.
pub struct Cores {
    threads: Vec<CoreThread>,
    /// Every core's accept loops, for the drain to stop.
    accepts: Vec<JoinHandle<()>>,
}

impl Cores {
    /// Starts `cores` threads accepting on duplicates of `pairs` (the
    /// originals stay with the caller, for an upgrade's handover).
    pub fn start(d: &Shared, pairs: &[ProxyPair], cores: usize) -> anyhow::Result<Cores> {
        let plan = spread(pairs.len(), cores);
        let counters = crate::metrics::global().proxy_cores(plan.len());
        let enrich_cache = proxy::enrich::cache();
        let mut started = Cores {
            threads: Vec::with_capacity(plan.len()),
            accepts: Vec::new(),
        };
        for (core, own) in plan.iter().enumerate() {
            let parts = CoreParts {
                pools: d.pools.core(core),
                ca: d.ca.shard(),
                enrich_cache: enrich_cache.clone(),
            };
            let env = super::env::proxy_env(d, parts);
            let mut dups = Vec::with_capacity(own.len() * 2);
            for &i in own {
                let p = pairs[i]
                    .try_clone()
                    .with_context(|| format!("duplicating proxy listener pair {i}"))?;
                dups.push(p.v4);
                dups.push(p.v6);
            }
            started.spawn(core, env, dups, counters[core].clone())?;
        }
        Ok(started)
    }

    fn spawn(
        &mut self,
        core: usize,
        env: proxy::Env,
        listeners: Vec<std::net::TcpListener>,
        accepted: Arc<AtomicU64>,
    ) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .on_thread_park(super::memory::collect_on_park)
            .thread_name(format!("cordon-core-{core}-blocking"))
            .enable_all()
            .build()
            .with_context(|| format!("starting the runtime of proxy core {core}"))?;
        {
            // Registered with this core's reactor: its thread alone polls them.
            let _in = rt.enter();
            rt.spawn(anchor_timers());
            for l in listeners {
                let l = tokio::net::TcpListener::from_std(l)?;
                self.accepts
                    .push(rt.spawn(proxy::serve(env.clone(), l, accepted.clone())));
            }
        }
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("cordon-core-{core}"))
            .spawn(move || {
                rt.block_on(stopped.cancelled());
                // Whatever the drain left (cut connections closing) is
                // dropped with the runtime.
                rt.shutdown_timeout(SHUTDOWN);
            })
            .with_context(|| format!("starting the thread of proxy core {core}"))?;
        self.threads.push(CoreThread { stop, thread });
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.threads.len()
    }

    /// The accept loops of every core, for `drain` to stop.
    pub fn take_accepts(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.accepts)
    }

    /// Ends every core's runtime and thread (after the drain).
    pub fn stop(self) {
        for t in &self.threads {
            t.stop.cancel();
        }
        for (core, t) in self.threads.into_iter().enumerate() {
            if t.thread.join().is_err() {
                tracing::error!(core, "a proxy core's thread panicked");
            }
        }
    }
}

/// Keeps one timer armed on the core, due sooner than any per-connection timer. tokio wakes
/// its driver (an eventfd write, then one more `epoll_wait`) whenever a timer is registered
/// while none is pending, even from the driver's own thread, which is awake anyway. hyper
/// arms a head-read timer after every answer, so with one connection on a core every request
/// paid that wakeup; with this timer pending, a later one registers without it.
async fn anchor_timers() {
    loop {
        tokio::time::sleep(ANCHOR).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_per_core_is_one_each() {
        assert_eq!(spread(2, 2), vec![vec![0], vec![1]]);
        assert_eq!(spread(1, 1), vec![vec![0]]);
    }

    #[test]
    fn more_pairs_than_cores_are_all_served() {
        // An image with four cores handed over to one with two, or one.
        assert_eq!(spread(4, 2), vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(spread(3, 1), vec![vec![0, 1, 2]]);
        for (pairs, cores) in [(5, 3), (7, 2), (2, 1)] {
            let mut served: Vec<usize> = spread(pairs, cores).concat();
            served.sort();
            assert_eq!(served, (0..pairs).collect::<Vec<_>>());
        }
    }

    #[test]
    fn fewer_pairs_than_cores_are_shared_and_every_core_accepts() {
        assert_eq!(spread(1, 3), vec![vec![0], vec![0], vec![0]]);
        assert_eq!(spread(2, 3), vec![vec![0], vec![1], vec![0]]);
        assert!(spread(1, 4).iter().all(|own| !own.is_empty()));
    }
}
