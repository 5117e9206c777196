//! The `[caps]` table of a policy file: per-agent ceilings on what one
//! agent may hold of the daemon, overriding the daemon's defaults
//! (`[caps]` in cordon.toml) for the agents the file names.
//!
//! ```toml
//! [caps]
//! connections = 64                # held at once
//! connections_per_second = 20     # new connections, sustained (a burst of twice that)
//! pending_approvals = 4           # requests waiting for a human at once
//! request_bytes_in_flight = 8388608   # declared request body bytes in flight at once
//! dns_queries_per_second = 50
//! ```
//!
//! Every value is a whole number >= 1 (a cap of nothing is a `deny` rule).
//! When several files apply to an agent, the tightest value of each wins,
//! as for the envelope; a field no file sets falls back to the daemon's
//! default. Over a delegation chain, the tightest over the chain applies.

use crate::error::PolicyError;
use crate::source::SourceText;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCaps {
    connections: Option<Spanned<i64>>,
    connections_per_second: Option<Spanned<i64>>,
    pending_approvals: Option<Spanned<i64>>,
    request_bytes_in_flight: Option<Spanned<i64>>,
    dns_queries_per_second: Option<Spanned<i64>>,
}

/// The caps a policy sets for an agent; `None` leaves the daemon's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapOverrides {
    pub connections: Option<u32>,
    pub connections_per_second: Option<u32>,
    pub pending_approvals: Option<u32>,
    pub request_bytes_in_flight: Option<u64>,
    pub dns_queries_per_second: Option<u32>,
}

impl CapOverrides {
    /// The tighter of each value.
    pub(crate) fn tighten(&mut self, other: &CapOverrides) {
        fn min<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.connections = min(self.connections, other.connections);
        self.connections_per_second =
            min(self.connections_per_second, other.connections_per_second);
        self.pending_approvals = min(self.pending_approvals, other.pending_approvals);
        self.request_bytes_in_flight =
            min(self.request_bytes_in_flight, other.request_bytes_in_flight);
        self.dns_queries_per_second =
            min(self.dns_queries_per_second, other.dns_queries_per_second);
    }
}

pub(crate) fn compile(src: &SourceText<'_>, raw: &RawCaps) -> Result<CapOverrides, PolicyError> {
    let small = |field: &str, v: &Option<Spanned<i64>>| -> Result<Option<u32>, PolicyError> {
        v.as_ref()
            .map(|s| {
                u32::try_from(*s.get_ref())
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        src.invalid(
                            s.span(),
                            format!(
                                "caps `{field}` must be a whole number from 1 to {}",
                                u32::MAX
                            ),
                        )
                    })
            })
            .transpose()
    };
    let bytes = raw
        .request_bytes_in_flight
        .as_ref()
        .map(|s| {
            u64::try_from(*s.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    src.invalid(
                        s.span(),
                        "caps `request_bytes_in_flight` must be a whole number of bytes >= 1",
                    )
                })
        })
        .transpose()?;
    Ok(CapOverrides {
        connections: small("connections", &raw.connections)?,
        connections_per_second: small("connections_per_second", &raw.connections_per_second)?,
        pending_approvals: small("pending_approvals", &raw.pending_approvals)?,
        request_bytes_in_flight: bytes,
        dns_queries_per_second: small("dns_queries_per_second", &raw.dns_queries_per_second)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_takes_the_smaller_of_each_set_value() {
        let mut a = CapOverrides {
            connections: Some(100),
            pending_approvals: Some(2),
            ..CapOverrides::default()
        };
        a.tighten(&CapOverrides {
            connections: Some(10),
            pending_approvals: None,
            dns_queries_per_second: Some(5),
            ..CapOverrides::default()
        });
        assert_eq!(a.connections, Some(10));
        assert_eq!(a.pending_approvals, Some(2));
        assert_eq!(a.dns_queries_per_second, Some(5));
        assert_eq!(a.connections_per_second, None);
    }
}
