//! Everything a scenario talks to, started once per bench: the upstream,
//! Cordon, and whichever peers could be installed. Dropping the rig stops
//! them all (each holds a [`Guard`](super::proc::Guard)).
use std::path::PathBuf;

use super::{bare::Bare, certs::Certs, cordon::Cordon, peers::Peer, upstream::Upstream};

pub struct Rig {
    pub oha: PathBuf,
    pub probe: PathBuf,
    pub certs: Certs,
    /// Peers first: they are stopped before the upstream they talk to.
    pub squid: Result<Peer, String>,
    pub mitmproxy: Result<Peer, String>,
    /// The bare forwarder (issue 18's ceiling).
    pub bare: Result<Bare, String>,
    pub cordon: Cordon,
    /// The same daemon with `[audit] durability = "batched"`.
    pub cordon_batched: Cordon,
    /// `--baseline-cordon PATH`: another build's daemon, strict durability
    /// and the same config, for before/after figures from one run.
    pub cordon_baseline: Option<Cordon>,
    /// Strict durability with `[audit] outcomes = false`: what the
    /// per-request outcome records cost. An error says why it did not start
    /// (a build whose config does not know the key).
    pub cordon_no_outcomes: Result<Cordon, String>,
    pub upstream: Upstream,
}

/// Who carries the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Direct,
    /// The bare forwarder.
    Bare,
    Cordon,
    #[serde(rename = "cordon-batched")]
    CordonBatched,
    #[serde(rename = "cordon-baseline")]
    CordonBaseline,
    #[serde(rename = "cordon-no-outcomes")]
    CordonNoOutcomes,
    Squid,
    Mitmproxy,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Bare => "bare-forwarder",
            Via::Cordon => "cordon",
            Via::CordonBatched => "cordon-batched",
            Via::CordonBaseline => "cordon-baseline",
            Via::CordonNoOutcomes => "cordon-no-outcomes",
            Via::Squid => "squid",
            Via::Mitmproxy => "mitmproxy",
        }
    }
}

impl Rig {
    /// The Cordon daemon a via runs through, if it is one.
    pub fn cordon(&self, via: Via) -> Option<&Cordon> {
        match via {
            Via::Cordon => Some(&self.cordon),
            Via::CordonBatched => Some(&self.cordon_batched),
            Via::CordonBaseline => self.cordon_baseline.as_ref(),
            Via::CordonNoOutcomes => self.cordon_no_outcomes.as_ref().ok(),
            _ => None,
        }
    }

    /// Whether this run has the via at all: the baseline daemon exists only
    /// with `--baseline-cordon`, and without it the report stays as it was.
    pub fn has(&self, via: Via) -> bool {
        via != Via::CordonBaseline || self.cordon_baseline.is_some()
    }

    pub fn peer(&self, via: Via) -> Option<&Peer> {
        match via {
            Via::Squid => self.squid.as_ref().ok(),
            Via::Mitmproxy => self.mitmproxy.as_ref().ok(),
            _ => None,
        }
    }

    /// Why a peer is not part of the run, if it is not.
    pub fn missing(&self, via: Via) -> Option<&str> {
        match via {
            Via::Squid => self.squid.as_ref().err().map(String::as_str),
            Via::Mitmproxy => self.mitmproxy.as_ref().err().map(String::as_str),
            Via::Bare => self.bare.as_ref().err().map(String::as_str),
            Via::CordonNoOutcomes => self.cordon_no_outcomes.as_ref().err().map(String::as_str),
            _ => None,
        }
    }

    /// The process whose CPU and memory count as the proxy's.
    pub fn proxy_pid(&self, via: Via) -> Option<u32> {
        match via {
            Via::Bare => self.bare.as_ref().ok().map(|b| b.guard.pid()),
            _ => self
                .cordon(via)
                .map(Cordon::pid)
                .or_else(|| self.peer(via).map(|p| p.guard.pid())),
        }
    }
}
