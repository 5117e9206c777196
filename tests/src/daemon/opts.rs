//! Options for starting a daemon under test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOpts {
    pub policies: PathBuf,
    pub dns_upstream: SocketAddr,
    pub upstream_ca: Option<PathBuf>,
    pub log_json: bool,
    /// Further arguments appended to `cordon daemon ...`.
    pub extra_args: Vec<String>,
    /// Extra environment for the daemon process (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// Binary to run instead of [`super::cordon_bin()`].
    pub bin: Option<PathBuf>,
}

impl DaemonOpts {
    pub fn new(policies: &Path, dns_upstream: SocketAddr) -> Self {
        Self {
            policies: policies.to_owned(),
            dns_upstream,
            upstream_ca: None,
            log_json: false,
            extra_args: Vec::new(),
            env: Vec::new(),
            bin: None,
        }
    }

    pub fn bin(mut self, path: &Path) -> Self {
        self.bin = Some(path.to_owned());
        self
    }

    pub fn upstream_ca(mut self, pem: &Path) -> Self {
        self.upstream_ca = Some(pem.to_owned());
        self
    }

    pub fn log_json(mut self) -> Self {
        self.log_json = true;
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}
