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

    /// The live entries, each with how long it has left: what a daemon
    /// stopping for an upgrade or a restart hands to the next one
    /// (`names_file.rs`), so an agent's connects to addresses it resolved
    /// through the old daemon are not refused by the new one as unresolved.
    pub fn snapshot(&self) -> Vec<Remembered> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        all.iter()
            .flat_map(|(agent, per)| {
                per.iter()
                    .filter(|(_, (_, t))| *t > now)
                    .map(|(ip, (name, t))| Remembered {
                        agent: agent.clone(),
                        ip: *ip,
                        name: name.clone(),
                        left: *t - now,
                    })
            })
            .collect()
    }

    /// Takes entries a previous daemon remembered, for the time they had left
    /// (never more than the longest this cache keeps anything).
    pub fn restore(&self, entries: Vec<Remembered>) {
        let now = Instant::now();
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for e in entries {
            let per = all.entry(e.agent).or_default();
            if per.len() < MAX_PER_AGENT {
                per.insert(normalise(e.ip), (e.name, now + e.left.min(MAX_TTL)));
            }
        }
    }
}

/// One remembered answer, as handed from one daemon to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub agent: String,
    pub ip: IpAddr,
    pub name: String,
    pub left: Duration,
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
    fn a_snapshot_restored_elsewhere_answers_the_same_and_drops_what_expired() {
        let old = NameCache::default();
        let (a, b): (IpAddr, IpAddr) = (
            "203.0.113.7".parse().unwrap(),
            "::ffff:203.0.113.8".parse().unwrap(),
        );
        old.remember("bot", "api.example.test", a, Duration::from_secs(600));
        old.remember("other", "x.example.test", b, Duration::from_secs(600));
        let mut snap = old.snapshot();
        snap.sort_by(|x, y| x.agent.cmp(&y.agent));
        assert_eq!(snap.len(), 2);
        assert!(snap[0].left > Duration::from_secs(590));
        let new = NameCache::default();
        new.restore(snap);
        assert_eq!(new.lookup("bot", a).as_deref(), Some("api.example.test"));
        assert_eq!(
            new.lookup("other", "203.0.113.8".parse().unwrap())
                .as_deref(),
            Some("x.example.test")
        );
        assert_eq!(new.lookup("other", a), None);
        let spent = NameCache::default();
        spent.restore(vec![Remembered {
            agent: "bot".into(),
            ip: a,
            name: "old.example.test".into(),
            left: Duration::ZERO,
        }]);
        assert_eq!(spent.lookup("bot", a), None);
    }

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
