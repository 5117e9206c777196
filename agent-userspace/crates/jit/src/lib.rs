//! Just-in-time credentials for Cordon's proxy.
//!
//! Agents hold placeholders; the real credentials are minted per agent
//! instance, scoped to what policy binds, short-lived, and revoked (or
//! dropped) when the instance ends:
//!
//! - **GitHub App installation tokens** ([`github`]): an RS256 app JWT buys
//!   a token limited to the binding's repositories and permissions, cached
//!   per (instance, scope), replaced before expiry, revoked at exit.
//! - **AWS role sessions with SigV4 re-signing** ([`aws`]): the agent signs
//!   with per-instance placeholder keys; the proxy [`aws::verify`]s that
//!   signature, and after policy allowed the request [`aws::resign`]s it
//!   with an STS AssumeRole session (streaming S3 uploads through
//!   [`aws::SignedBody`]). [`aws::aws_action`] names requests
//!   `aws.<service>.<operation>`.
//! - **Per-action choice** of binding is `cordon_policy::choose`.
//!
//! See docs/credentials.md.

pub mod aws;
mod cache;
pub mod github;
pub mod https;
mod instance;
mod state;

pub use cache::{Expiring, Got, RefreshCache, Withdrawn};
pub use instance::InstanceId;
pub use state::{ISSUER_TIMEOUT, InstanceRevoked, JitCredentials, SetupError};
