//! Per-agent caps: what one agent instance may hold of the daemon at once
//! (connections, pending approvals, request bytes) and how fast it may
//! ask (new connections, DNS queries), so one runaway agent cannot starve
//! the others. `Caps` keeps a `Ledger` per instance behind one lock; the
//! decisions are the ledger's (pure), the budget's (`budget`) and the
//! limits' (`limits`). Refusals are counted in the metrics here, recorded
//! by the caller when a burst opens, and summed up by `summary` when the
//! burst ends. `admit` is the proxy's and the resolver's view.
pub mod admit;
mod bucket;
pub mod budget;
pub mod burst;
mod ledger;
pub mod limits;
pub mod summary;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use cordon_policy::CapOverrides;

pub use budget::Budget;
use burst::Hit;
pub use burst::Summary;
use ledger::Ledger;
pub use limits::Limits;

use crate::{
    cgroup::AgentPath,
    config::CapDefaults,
    request::caps::{Cap, CapHit, Permit},
};

pub struct Caps {
    defaults: CapDefaults,
    budget: Budget,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each instance's ledger and the limits it was last held to.
    ledgers: HashMap<AgentPath, (Ledger, Limits)>,
    /// Agent connections held, all agents together.
    connections: u64,
}

/// A summary record due for one agent's burst.
#[derive(Debug)]
pub struct Due {
    pub agent: AgentPath,
    pub cap: Cap,
    pub limit: u64,
    pub from_policy: bool,
    pub summary: Summary,
}

impl Caps {
    pub fn new(defaults: CapDefaults, budget: Budget) -> Arc<Caps> {
        Arc::new(Caps {
            defaults,
            budget,
            state: Mutex::default(),
        })
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The limits for an agent whose policy sets `policy`.
    pub fn limits(&self, policy: &CapOverrides) -> Limits {
        Limits::resolve(&self.defaults, policy, self.budget.agent_ceiling)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock still holds consistent counters: every update is
        // one statement.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Agent connections held now, all agents together.
    pub fn connections_held(&self) -> u64 {
        self.lock().connections
    }

    /// A new connection from `agent`: the daemon's ceiling, then the
    /// agent's concurrency and rate. Held until the permit drops.
    pub fn connection(
        self: &Arc<Self>,
        agent: &AgentPath,
        l: Limits,
        now: Instant,
    ) -> Result<Permit, CapHit> {
        let mut s = self.lock();
        let State {
            ledgers,
            connections,
        } = &mut *s;
        let ledger = ledger_of(ledgers, agent, l);
        if *connections >= self.budget.daemon_connections {
            let limit = self.budget.daemon_connections;
            return Err(refuse(
                ledger,
                agent,
                Cap::DaemonConnections,
                limit,
                false,
                now,
            ));
        }
        if let Err(cap) = ledger.connect(&l, now) {
            return Err(over(ledger, agent, &l, cap, now));
        }
        *connections += 1;
        drop(s);
        let (caps, agent) = (self.clone(), agent.clone());
        Ok(Permit::new(move || {
            let mut s = caps.lock();
            s.connections = s.connections.saturating_sub(1);
            if let Some((ledger, _)) = s.ledgers.get_mut(&agent) {
                ledger.disconnect();
            }
        }))
    }

    pub fn dns_query(&self, agent: &AgentPath, l: Limits, now: Instant) -> Result<(), CapHit> {
        let mut s = self.lock();
        let ledger = ledger_of(&mut s.ledgers, agent, l);
        ledger
            .dns_query(&l, now)
            .map_err(|cap| over(ledger, agent, &l, cap, now))
    }

    /// `bytes` of declared request body, held until the permit drops.
    pub fn request_bytes(
        self: &Arc<Self>,
        agent: &AgentPath,
        l: Limits,
        bytes: u64,
        now: Instant,
    ) -> Result<Permit, CapHit> {
        if bytes == 0 {
            return Ok(Permit::none());
        }
        let mut s = self.lock();
        let ledger = ledger_of(&mut s.ledgers, agent, l);
        if let Err(cap) = ledger.take_bytes(bytes, &l) {
            return Err(over(ledger, agent, &l, cap, now));
        }
        drop(s);
        let (caps, agent) = (self.clone(), agent.clone());
        Ok(Permit::new(move || {
            if let Some((ledger, _)) = caps.lock().ledgers.get_mut(&agent) {
                ledger.give_bytes(bytes);
            }
        }))
    }

    /// One more request waiting for a human, until the permit drops.
    pub fn approval(
        self: &Arc<Self>,
        agent: &AgentPath,
        l: Limits,
        now: Instant,
    ) -> Result<Permit, CapHit> {
        let mut s = self.lock();
        let ledger = ledger_of(&mut s.ledgers, agent, l);
        if let Err(cap) = ledger.open_approval(&l) {
            return Err(over(ledger, agent, &l, cap, now));
        }
        drop(s);
        let (caps, agent) = (self.clone(), agent.clone());
        Ok(Permit::new(move || {
            if let Some((ledger, _)) = caps.lock().ledgers.get_mut(&agent) {
                ledger.close_approval();
            }
        }))
    }

    /// The summary records due at `now`; ledgers that hold nothing any
    /// more are forgotten, so the map is bounded by the live instances.
    pub fn due(&self, now: Instant) -> Vec<Due> {
        let mut s = self.lock();
        let mut due = Vec::new();
        s.ledgers.retain(|agent, (ledger, limits)| {
            for (cap, summary) in ledger.summaries(now) {
                let (limit, from_policy) = match cap {
                    Cap::DaemonConnections => (self.budget.daemon_connections, false),
                    _ => (limits.of(cap), limits.set_by_policy(cap)),
                };
                due.push(Due {
                    agent: agent.clone(),
                    cap,
                    limit,
                    from_policy,
                    summary,
                });
            }
            !ledger.is_idle(limits, now)
        });
        due
    }
}

/// The agent's ledger, remembering the limits it is held to now.
fn ledger_of<'a>(
    ledgers: &'a mut HashMap<AgentPath, (Ledger, Limits)>,
    agent: &AgentPath,
    l: Limits,
) -> &'a mut Ledger {
    let entry = ledgers
        .entry(agent.clone())
        .or_insert_with(|| (Ledger::default(), l));
    entry.1 = l;
    &mut entry.0
}

/// Counts the refusal (metrics) and says whether it opens a burst.
/// A refusal by one of the agent's own caps, at the limit in force for it.
fn over(ledger: &mut Ledger, agent: &AgentPath, l: &Limits, cap: Cap, now: Instant) -> CapHit {
    refuse(ledger, agent, cap, l.of(cap), l.set_by_policy(cap), now)
}

fn refuse(
    ledger: &mut Ledger,
    agent: &AgentPath,
    cap: Cap,
    limit: u64,
    from_policy: bool,
    now: Instant,
) -> CapHit {
    let opens_burst = ledger.refused(cap, now) == Hit::Opens;
    crate::metrics::global().record_cap_refusal(&agent.chain_display(), cap, opens_burst);
    CapHit {
        cap,
        limit,
        from_policy,
        opens_burst,
    }
}

#[cfg(test)]
mod tests;
