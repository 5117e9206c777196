//! The caps as the proxy and the resolver ask them (`request::caps::
//! Admission`): each call resolves the agent's limits from the policy in
//! force and the daemon's defaults, then asks the ledger.
use std::time::Instant;

use cordon_policy::CapOverrides;

use super::Limits;
use crate::{
    cgroup::AgentPath,
    daemon::Shared,
    request::{
        Pinned,
        caps::{Admission, CapHit, Permit},
    },
};

pub struct DaemonAdmission(pub Shared);

/// The limits `agent` is held to under the policy in force (the daemon's
/// defaults while no policy has loaded).
pub fn limits_now(d: &Shared, agent: &AgentPath) -> Limits {
    let policy = d
        .policy
        .engine()
        .snapshot()
        .map(|set| set.caps_for(&agent.chain))
        .unwrap_or_default();
    d.caps.limits(&policy)
}

/// The limits under a request's pinned snapshot.
pub fn limits_pinned(d: &Shared, pinned: &Pinned, agent: &AgentPath) -> Limits {
    let policy = pinned
        .policy
        .as_ref()
        .map_or_else(CapOverrides::default, |set| set.caps_for(&agent.chain));
    d.caps.limits(&policy)
}

impl Admission for DaemonAdmission {
    fn connection(&self, agent: &AgentPath) -> Result<Permit, CapHit> {
        let l = limits_now(&self.0, agent);
        self.0.caps.connection(agent, l, Instant::now())
    }

    fn dns_query(&self, agent: &AgentPath) -> Result<(), CapHit> {
        let l = limits_now(&self.0, agent);
        self.0.caps.dns_query(agent, l, Instant::now())
    }

    fn request_bytes(&self, agent: &AgentPath, bytes: u64) -> Result<Permit, CapHit> {
        let l = limits_now(&self.0, agent);
        self.0.caps.request_bytes(agent, l, bytes, Instant::now())
    }
}
