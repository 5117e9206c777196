//! Live proxied connections, so the kill switch can cut an agent's traffic
//! mid-flight rather than only refusing new connections.
use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio_util::sync::CancellationToken;

use crate::cgroup::AgentPath;

#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, (AgentPath, CancellationToken)>>,
}

/// Deregisters the connection when it ends.
pub struct ConnGuard<'a> {
    id: u64,
    conns: &'a Connections,
    pub token: CancellationToken,
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
        let token = CancellationToken::new();
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (agent.clone(), token.clone()));
        ConnGuard {
            id,
            conns: self,
            token,
        }
    }

    /// Cancels every connection whose agent matches; returns how many.
    pub fn cancel_where(&self, matches: impl Fn(&AgentPath) -> bool) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (agent, token) in live.values() {
            if matches(agent) {
                token.cancel();
                n += 1;
            }
        }
        n
    }
}
