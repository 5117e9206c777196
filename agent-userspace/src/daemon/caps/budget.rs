//! The daemon's descriptor budget, so that agents at their caps cannot
//! starve the daemon or each other. Every agent connection costs two
//! descriptors (the agent's socket and the upstream's); a reserve is kept
//! back for the daemon itself (control socket, console, metrics, audit
//! files, the database, DNS upstream sockets). What is left is the
//! daemon-wide ceiling on agent connections, and no one agent may hold
//! more than a quarter of it, so at least four agents at their caps fit
//! beside each other. Pure; `start/limits.rs` reads the limit and logs the plan.

/// Descriptors per agent connection: the agent's socket and the upstream's.
pub const FDS_PER_CONNECTION: u64 = 2;
/// No single agent may hold more than 1/AGENT_SHARE of the ceiling.
pub const AGENT_SHARE: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub nofile: u64,
    /// Kept back for the daemon itself.
    pub reserve: u64,
    /// Agent connections the daemon holds at once, all agents together.
    pub daemon_connections: u64,
    /// The most one agent may hold, whatever its policy says.
    pub agent_ceiling: u64,
}

impl Budget {
    /// The plan for an open-file limit of `nofile`, keeping back `reserve`
    /// (at most a quarter of a small limit, so a low limit still serves).
    pub fn plan(nofile: u64, reserve: u64) -> Budget {
        let reserve = reserve.min(nofile / 4);
        let daemon_connections = (nofile - reserve) / FDS_PER_CONNECTION;
        Budget {
            nofile,
            reserve,
            daemon_connections,
            agent_ceiling: (daemon_connections / AGENT_SHARE).max(1),
        }
    }

    /// How many agents at `per_agent` connections fit at once.
    pub fn agents_at_cap(&self, per_agent: u64) -> u64 {
        self.daemon_connections / per_agent.clamp(1, self.agent_ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_limit_holds_hundreds_of_agents_at_the_default_cap() {
        let b = Budget::plan(1 << 20, 1024);
        assert_eq!(b.daemon_connections, ((1 << 20) - 1024) / 2);
        assert_eq!(b.agents_at_cap(1024), 511);
        assert!(b.agent_ceiling >= 1024);
    }

    #[test]
    fn a_low_limit_keeps_a_quarter_back_and_shrinks_what_one_agent_may_hold() {
        let b = Budget::plan(1024, 1024);
        assert_eq!(b.reserve, 256);
        assert_eq!(b.daemon_connections, 384);
        assert_eq!(b.agent_ceiling, 96);
        assert_eq!(
            b.agents_at_cap(1024),
            4,
            "the default cap is clamped to the ceiling"
        );
        // Reserve plus every connection at two descriptors stays in the limit.
        assert!(b.reserve + b.daemon_connections * FDS_PER_CONNECTION <= b.nofile);
    }
}
