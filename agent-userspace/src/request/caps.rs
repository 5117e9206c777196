//! Per-agent caps as the proxy and the resolver see them: they ask the
//! daemon's `Admission` before taking a connection, a DNS query or a
//! request body, and hold the `Permit` for as long as the thing lives. A
//! refusal is a `CapHit`; only the hit that opens a burst is recorded on
//! its own (`record`), the rest are counted and summed up by the daemon
//! when the burst ends (`daemon/caps`).
use std::sync::Arc;

use cordon_audit::{AuditLog, EventKind};

use super::{
    decider::Ask,
    record::record_refusal,
    refusal::{Attribution, Kind, Recorded, Refusal},
};
use crate::cgroup::AgentPath;

/// Which cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cap {
    /// Connections held at once by one agent instance.
    Connections,
    /// New connections per second (a token bucket).
    ConnectionRate,
    /// Requests waiting for a human at once.
    PendingApprovals,
    /// Declared request body bytes in flight at once.
    RequestBytes,
    /// DNS queries per second (a token bucket).
    DnsRate,
    /// The daemon's own ceiling on agent connections (its descriptor budget),
    /// shared by every agent.
    DaemonConnections,
}

impl Cap {
    pub const ALL: [Cap; 6] = [
        Cap::Connections,
        Cap::ConnectionRate,
        Cap::PendingApprovals,
        Cap::RequestBytes,
        Cap::DnsRate,
        Cap::DaemonConnections,
    ];

    /// The name in rule ids (`cap:<name>`), metrics labels and config keys.
    pub fn name(self) -> &'static str {
        match self {
            Cap::Connections => "connections",
            Cap::ConnectionRate => "connections_per_second",
            Cap::PendingApprovals => "pending_approvals",
            Cap::RequestBytes => "request_bytes_in_flight",
            Cap::DnsRate => "dns_queries_per_second",
            Cap::DaemonConnections => "daemon_connections",
        }
    }

    /// What the cap bounds, for reasons a human reads.
    pub fn what(self) -> &'static str {
        match self {
            Cap::Connections => "connections held at once",
            Cap::ConnectionRate => "new connections per second",
            Cap::PendingApprovals => "requests waiting for approval at once",
            Cap::RequestBytes => "request body bytes in flight at once",
            Cap::DnsRate => "DNS queries per second",
            Cap::DaemonConnections => "agent connections the daemon holds at once (all agents)",
        }
    }
}

/// A refusal by a cap, before it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapHit {
    pub cap: Cap,
    /// The cap in force.
    pub limit: u64,
    /// Whether the agent's policy set it (else the daemon's default).
    pub from_policy: bool,
    /// The first refusal of a burst: recorded on its own. Later ones are
    /// counted in the burst's summary record.
    pub opens_burst: bool,
}

impl CapHit {
    pub fn reason(&self) -> String {
        let source = if self.from_policy {
            "set by policy"
        } else {
            "daemon default"
        };
        format!(
            "over its cap of {} {} ({source}); further refusals in this burst are counted in one summary record",
            self.limit,
            self.cap.what()
        )
    }

    /// The refusal, not yet recorded.
    pub fn refusal(&self, policy_version: Arc<str>) -> Refusal {
        Refusal::new(
            Kind::Cap(self.cap),
            self.reason(),
            Attribution::cordon(policy_version),
        )
    }
}

/// Releases what it holds when dropped.
#[must_use = "the permit releases its slot when dropped"]
pub struct Permit(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Permit {
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Permit {
        Permit(Some(Box::new(release)))
    }

    /// Holds nothing (nothing to count).
    pub fn none() -> Permit {
        Permit(None)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Permit(held)"
        } else {
            "Permit(none)"
        })
    }
}

/// The daemon's caps, as the proxy and the resolver ask them. Every call
/// counts a refusal in the metrics itself; recording is the caller's (it
/// has the request to record), through `record`.
pub trait Admission: Send + Sync {
    /// A new connection from `agent`: its rate and its concurrency.
    fn connection(&self, agent: &AgentPath) -> Result<Permit, CapHit>;
    /// One DNS query from `agent`.
    fn dns_query(&self, agent: &AgentPath) -> Result<(), CapHit>;
    /// `bytes` of declared request body from `agent`, held until the
    /// permit drops (the request ended).
    fn request_bytes(&self, agent: &AgentPath, bytes: u64) -> Result<Permit, CapHit>;
}

/// Records a cap refusal: the burst's first on its own (`limit.hit`), the
/// rest only counted (the daemon writes their summary). A record that
/// cannot be written leaves the refusal standing.
pub async fn record(audit: &AuditLog, ask: &Ask<'_>, hit: &CapHit, version: Arc<str>) -> Refusal {
    let refusal = hit.refusal(version);
    if hit.opens_burst {
        record_refusal(audit, ask, Some(EventKind::LimitHit), refusal).await
    } else {
        refusal.recorded(Recorded::Coalesced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_refusal_is_a_429_under_its_cap_rule() {
        let hit = CapHit {
            cap: Cap::Connections,
            limit: 20,
            from_policy: true,
            opens_burst: true,
        };
        let r = hit.refusal(Arc::from("v1"));
        assert_eq!(r.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(&*r.decision().rule_id, "cap:connections");
        assert!(
            r.reason()
                .contains("20 connections held at once (set by policy)")
        );
        assert_eq!(&*r.decision().decided_by, crate::request::refusal::CORDON);
    }

    #[test]
    fn a_permit_releases_once_when_dropped() {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let m = n.clone();
        let p = Permit::new(move || {
            m.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(p);
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
