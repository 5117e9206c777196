//! One error type for the whole harness, so a failing setup names what it was doing.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building the test world.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or socket operation failed; `what` names the object and the operation.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An external command (ip, git, cordon) ran but did not succeed.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// The system is not in the state the harness needs (missing route, binary, mount).
    #[error("{0}")]
    Setup(String),
    /// Certificate or TLS configuration could not be built.
    #[error("tls: {0}")]
    Tls(String),
    /// A DNS message could not be encoded or decoded.
    #[error("dns: {0}")]
    Dns(String),
    /// A path the harness expected to read or write is unusable.
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach a description to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}
