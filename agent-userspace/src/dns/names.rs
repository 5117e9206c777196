//! Per-agent memory of name -> address from answers Cordon itself relayed.
//! Keyed by agent (chain), so one agent's lookups never name another's
//! connections.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::RwLock,
    time::{Duration, Instant},
};

/// Remember answers at least this long: clients cache past the TTL.
const MIN_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(6 * 3600);
/// Bound on entries per agent, so a query flood cannot grow memory.
const MAX_PER_AGENT: usize = 4096;

/// Address -> (name, remembered until), for one agent.
type AgentNames = HashMap<IpAddr, (String, Instant)>;

#[derive(Default)]
pub struct NameCache {
    inner: RwLock<HashMap<String, AgentNames>>,
}

impl NameCache {
    pub fn remember(&self, agent: &str, name: &str, ip: IpAddr, ttl: Duration) {
        let until = Instant::now() + ttl.clamp(MIN_TTL, MAX_TTL);
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let per = all.entry(agent.to_string()).or_default();
        if per.len() >= MAX_PER_AGENT {
            let now = Instant::now();
            per.retain(|_, (_, t)| *t > now);
            if per.len() >= MAX_PER_AGENT {
                per.clear();
            }
        }
        per.insert(
            normalise(ip),
            (name.trim_end_matches('.').to_ascii_lowercase(), until),
        );
    }

    pub fn lookup(&self, agent: &str, ip: IpAddr) -> Option<String> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let (name, until) = all.get(agent)?.get(&normalise(ip))?;
        (*until > Instant::now()).then(|| name.clone())
    }
}

fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_remembered_per_agent_only() {
        let c = NameCache::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        c.remember("a", "API.Example.test.", ip, Duration::from_secs(1));
        assert_eq!(c.lookup("a", ip).as_deref(), Some("api.example.test"));
        assert_eq!(c.lookup("b", ip), None);
    }

    #[test]
    fn v4_mapped_addresses_match_their_v4_entry() {
        let c = NameCache::default();
        c.remember(
            "a",
            "x.test",
            "203.0.113.7".parse().unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(
            c.lookup("a", "::ffff:203.0.113.7".parse().unwrap())
                .as_deref(),
            Some("x.test")
        );
    }
}
