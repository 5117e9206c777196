//! The caps one agent instance is held to: the daemon's defaults, replaced
//! field by field by its policy's `[caps]`. A default connection cap is
//! clamped to the ceiling the daemon's descriptor budget allows one agent
//! (`budget`); one the policy sets is held only to the daemon-wide budget.
use cordon_policy::CapOverrides;

use crate::config::CapDefaults;
use crate::request::caps::Cap;

/// Token buckets hold this many seconds of their rate: a burst of twice the
/// sustained rate passes.
pub const BURST_SECS: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub connections: u64,
    pub connections_per_second: u64,
    pub pending_approvals: u64,
    pub request_bytes_in_flight: u64,
    pub dns_queries_per_second: u64,
    /// Which values the policy set (else the daemon's default applies).
    pub from_policy: CapOverrides,
}

impl Limits {
    pub fn resolve(defaults: &CapDefaults, policy: &CapOverrides, agent_ceiling: u64) -> Limits {
        let or = |v: Option<u32>, d: u64| v.map_or(d, u64::from);
        Limits {
            // The default is held to a share of the daemon's budget, so agents at
            // their defaults cannot starve one another; a cap the agent's policy sets
            // is the operator's choice and is held only to the whole budget.
            connections: policy
                .connections
                .map_or(defaults.connections.min(agent_ceiling.max(1)), u64::from),
            connections_per_second: or(
                policy.connections_per_second,
                defaults.connections_per_second,
            ),
            pending_approvals: or(policy.pending_approvals, defaults.pending_approvals),
            request_bytes_in_flight: policy
                .request_bytes_in_flight
                .unwrap_or(defaults.request_bytes_in_flight),
            dns_queries_per_second: or(
                policy.dns_queries_per_second,
                defaults.dns_queries_per_second,
            ),
            from_policy: *policy,
        }
    }

    /// The value of `cap` (the daemon-wide ceiling is not per agent).
    pub fn of(&self, cap: Cap) -> u64 {
        match cap {
            Cap::Connections => self.connections,
            Cap::ConnectionRate => self.connections_per_second,
            Cap::PendingApprovals => self.pending_approvals,
            Cap::RequestBytes => self.request_bytes_in_flight,
            Cap::DnsRate => self.dns_queries_per_second,
            Cap::DaemonConnections => 0,
        }
    }

    pub fn set_by_policy(&self, cap: Cap) -> bool {
        let p = &self.from_policy;
        match cap {
            Cap::Connections => p.connections.is_some(),
            Cap::ConnectionRate => p.connections_per_second.is_some(),
            Cap::PendingApprovals => p.pending_approvals.is_some(),
            Cap::RequestBytes => p.request_bytes_in_flight.is_some(),
            Cap::DnsRate => p.dns_queries_per_second.is_some(),
            Cap::DaemonConnections => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_values_replace_defaults_field_by_field() {
        let d = CapDefaults::default();
        let p = CapOverrides {
            connections: Some(20),
            dns_queries_per_second: Some(5000),
            ..CapOverrides::default()
        };
        let l = Limits::resolve(&d, &p, u64::MAX);
        assert_eq!(l.connections, 20);
        assert_eq!(
            l.dns_queries_per_second, 5000,
            "a policy may raise a default"
        );
        assert_eq!(l.pending_approvals, d.pending_approvals);
        assert!(l.set_by_policy(Cap::Connections) && !l.set_by_policy(Cap::PendingApprovals));
    }

    #[test]
    fn an_agent_at_the_default_holds_no_more_than_its_share_of_the_budget() {
        let d = CapDefaults {
            connections: 1_000_000,
            ..CapDefaults::default()
        };
        let l = Limits::resolve(&d, &CapOverrides::default(), 5_000);
        assert_eq!(l.connections, 5_000);
    }

    #[test]
    fn a_connection_cap_the_policy_sets_passes_the_share_and_meets_only_the_daemon_budget() {
        let p = CapOverrides {
            connections: Some(1_000_000),
            ..CapOverrides::default()
        };
        let l = Limits::resolve(&CapDefaults::default(), &p, 5_000);
        assert_eq!(l.connections, 1_000_000);
    }
}
