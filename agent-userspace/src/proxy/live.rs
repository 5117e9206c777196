//! Live proxied connections, so the kill switch can cut an agent's traffic
//! mid-flight rather than only refusing new connections, and a stopping
//! daemon can let them finish (drain) before it exits or hands over.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use super::trip::{Trip, TripWait};

use crate::cgroup::AgentPath;

#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, (AgentPath, Arc<Trip>)>>,
    /// Accepted connections whose task has not ended, identified or not.
    accepted: AtomicUsize,
    /// Tripped when the daemon starts to stop: HTTP connections finish
    /// the request they are on and close instead of waiting for another.
    draining: Trip,
}

/// Counts one accepted connection until its task ends.
pub struct Accepted(Arc<Connections>);

impl Drop for Accepted {
    fn drop(&mut self) {
        self.0.accepted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Deregisters the connection when it ends.
pub struct ConnGuard<'a> {
    id: u64,
    conns: &'a Connections,
    /// Tripped when the kill switch cuts the connection.
    pub cut: Arc<Trip>,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.conns
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Connections {
    pub fn register(&self, agent: &AgentPath) -> ConnGuard<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cut = Arc::new(Trip::default());
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (agent.clone(), cut.clone()));
        ConnGuard {
            id,
            conns: self,
            cut,
        }
    }

    /// Runs `work` as a live connection of `agent`: its output, or `None` once the kill
    /// switch cut it (dropping it).
    pub async fn until_cut<F: Future>(&self, agent: &AgentPath, work: F) -> Option<F::Output> {
        let guard = self.register(agent);
        tokio::select! {
            out = work => Some(out),
            () = guard.cut.wait() => None,
        }
    }

    /// Held by a connection's task from accept to its end, so a drain
    /// waits for connections still being identified too.
    pub fn accepted(self: &Arc<Self>) -> Accepted {
        self.accepted.fetch_add(1, Ordering::AcqRel);
        Accepted(self.clone())
    }

    /// Connections accepted whose task has not ended.
    pub fn in_flight(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// Tells HTTP connections to close once their current request is
    /// answered (the daemon is stopping or handing over).
    pub fn begin_drain(&self) {
        self.draining.trip();
    }

    /// Resolves once the daemon has begun to drain.
    pub fn draining(&self) -> TripWait<'_> {
        self.draining.wait()
    }

    /// Cuts every connection whose agent matches; returns how many.
    pub fn cancel_where(&self, matches: impl Fn(&AgentPath) -> bool) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (agent, cut) in live.values() {
            if matches(agent) {
                cut.trip();
                n += 1;
            }
        }
        n
    }
}
