//! The long-running daemon: attaches enforcement, then serves the proxy,
//! the resolver and the control socket until told to stop.
pub mod agents;
pub mod decide;
pub mod listeners;
pub mod start;

use std::sync::Arc;

use crate::{bpf::EnforcementMaps, config::DaemonConfig, dns::NameCache};

pub use start::run;

/// State shared by every task of the daemon.
pub struct Daemon {
    pub cfg: DaemonConfig,
    pub registry: agents::Registry,
    pub maps: EnforcementMaps,
    pub policy: decide::PolicyHandle,
    pub names: NameCache,
    pub proxy_port: u16,
    pub dns_port: u16,
}

pub type Shared = Arc<Daemon>;
