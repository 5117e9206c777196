//! Connections an agent resets before sending a byte (a port scan, a
//! connect()+close health check, a pool warming up): nothing reached any
//! upstream, Cordon connected nowhere. Each is still in the trail, but a
//! loop of them is not one record per connection: the first to a
//! destination opens a burst and is recorded on its own, with the static
//! answer; the rest are counted, and the daemon writes one summary record
//! with the count when the burst ends (as cap refusals are, `daemon/caps`).
use std::{net::SocketAddr, sync::Arc};

use crate::cgroup::AgentPath;

/// What a reset probe means for the trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeHit {
    /// Record it on its own: the first of a burst to this destination (or
    /// the daemon tracks too many bursts to coalesce more).
    Record,
    /// Counted in the burst's summary record.
    Counted,
}

/// The static answer the probe got, carried into the summary record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The decision's own rule id, shared: counting a probe copies nothing.
    pub rule: Arc<str>,
    pub allowed: bool,
}

pub trait Probes: Send + Sync {
    /// A connection from `agent` to `dst` was reset before its first byte.
    fn reset_probe(&self, agent: &AgentPath, dst: SocketAddr, answer: ProbeAnswer) -> ProbeHit;
}
