//! One error type for the whole crate, so the proxy can map each cause to a
//! response (e.g. `UpstreamVerify` -> 502) without string matching.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The CA private key must be readable by its owner only.
    #[error(
        "{path}: permissions {mode:04o} are too open; the CA key must be 0600 or stricter (chmod 600 {path})"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("{path}: not a regular file (symlinks are refused for CA material)")]
    NotRegularFile { path: PathBuf },

    /// Exactly one of ca.pem / ca.key exists. Regenerating would silently
    /// replace a CA that agents may already trust, so we refuse instead.
    #[error(
        "{present} exists but {missing} does not; restore it or remove both to create a new CA"
    )]
    CaIncomplete { present: PathBuf, missing: PathBuf },

    #[error("{path}: {reason}")]
    CaInvalid { path: PathBuf, reason: String },

    #[error("generating the Cordon CA: {0}")]
    CaGenerate(#[source] rcgen::Error),

    #[error("minting a leaf certificate for {name:?}: {source}")]
    Mint {
        name: String,
        #[source]
        source: rcgen::Error,
    },

    /// A mint error shared by every caller that waited on the same
    /// in-flight generation.
    #[error(transparent)]
    Shared(std::sync::Arc<TlsError>),

    #[error("{name:?} is not a valid DNS name or IP address")]
    InvalidName { name: String },

    #[error("invalid leaf options: {0}")]
    InvalidOptions(&'static str),

    #[error("building the TLS configuration: {0}")]
    Config(#[source] rustls::Error),

    #[error("{path}: {reason}")]
    ExtraCa { path: PathBuf, reason: String },

    #[error(
        "no trust roots: the system store yielded no usable certificate and no extra CA file was given"
    )]
    NoTrustRoots,

    /// The agent-facing handshake failed (bad ClientHello, client rejected
    /// our certificate, connection dropped...).
    #[error("TLS handshake with the agent for {name:?} failed: {source}")]
    AgentHandshake {
        name: String,
        #[source]
        source: io::Error,
    },

    /// The upstream server's certificate did not verify. The proxy must fail
    /// the request (502), never retry without verification.
    #[error("upstream {host} failed certificate verification: {reason}")]
    UpstreamVerify {
        host: String,
        reason: rustls::CertificateError,
    },

    /// Any other upstream handshake failure (alert, protocol error, I/O).
    #[error("TLS handshake with upstream {host} failed: {source}")]
    UpstreamHandshake {
        host: String,
        #[source]
        source: io::Error,
    },
}

impl TlsError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        TlsError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
