//! `[caps]` in cordon.toml: the per-agent caps every agent instance gets
//! unless its policy's `[caps]` sets its own (docs/config.md, "Caps").
use serde::Deserialize;

/// The section as written; absent fields keep the built-in defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsSection {
    pub connections: Option<u64>,
    pub connections_per_second: Option<u64>,
    pub pending_approvals: Option<u64>,
    pub request_bytes_in_flight: Option<u64>,
    pub dns_queries_per_second: Option<u64>,
    /// Descriptors kept back from agent connections for the daemon itself
    /// (control socket, console, audit, database, upstream DNS).
    pub reserve_fds: Option<u64>,
}

/// The daemon's caps, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapDefaults {
    pub connections: u64,
    pub connections_per_second: u64,
    pub pending_approvals: u64,
    pub request_bytes_in_flight: u64,
    pub dns_queries_per_second: u64,
    pub reserve_fds: u64,
}

impl Default for CapDefaults {
    /// Generous for one well-behaved agent, small against the daemon's
    /// budget: 1,024 connections are 2,048 of its descriptors and at most
    /// a few hundred MiB in the worst case (see docs/config.md).
    fn default() -> CapDefaults {
        CapDefaults {
            connections: 1024,
            connections_per_second: 200,
            pending_approvals: 32,
            request_bytes_in_flight: 256 * 1024 * 1024,
            dns_queries_per_second: 200,
            reserve_fds: 1024,
        }
    }
}

impl CapsSection {
    pub fn resolve(&self) -> Result<CapDefaults, String> {
        let d = CapDefaults::default();
        let pick = |field: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(format!(
                "[caps] {field} must be at least 1 (a cap of nothing is a deny rule)"
            )),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        Ok(CapDefaults {
            connections: pick("connections", self.connections, d.connections)?,
            connections_per_second: pick(
                "connections_per_second",
                self.connections_per_second,
                d.connections_per_second,
            )?,
            pending_approvals: pick(
                "pending_approvals",
                self.pending_approvals,
                d.pending_approvals,
            )?,
            request_bytes_in_flight: pick(
                "request_bytes_in_flight",
                self.request_bytes_in_flight,
                d.request_bytes_in_flight,
            )?,
            dns_queries_per_second: pick(
                "dns_queries_per_second",
                self.dns_queries_per_second,
                d.dns_queries_per_second,
            )?,
            // Zero is allowed here: an operator may choose no reserve.
            reserve_fds: self.reserve_fds.unwrap_or(d.reserve_fds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_keep_the_defaults_and_set_ones_replace_them() {
        let s: CapsSection = toml::from_str("connections = 20\n").unwrap();
        let r = s.resolve().unwrap();
        assert_eq!(r.connections, 20);
        assert_eq!(
            r.pending_approvals,
            CapDefaults::default().pending_approvals
        );
    }

    #[test]
    fn a_zero_cap_is_refused_naming_the_field() {
        let s: CapsSection = toml::from_str("dns_queries_per_second = 0\n").unwrap();
        assert!(s.resolve().unwrap_err().contains("dns_queries_per_second"));
    }
}
