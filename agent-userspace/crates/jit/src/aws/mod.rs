//! AWS: role sessions from STS, placeholder keys for agents, and the SigV4
//! verify -> re-sign path the proxy runs on each request.

pub mod action;
mod auth;
pub mod body;
mod canonical;
mod checks;
pub mod chunked;
pub mod credentials;
mod encode;
pub mod error;
pub mod head;
pub mod placeholder;
pub mod resign;
mod s3_action;
pub mod sessions;
pub mod sts;
pub mod verify;

pub use action::{AwsAction, aws_action};
pub use auth::SigForm;
pub use body::{SignedBody, SignedBodyError};
pub use canonical::CredentialScope;
pub use chunked::ChunkResigner;
pub use credentials::SessionCredentials;
pub use error::SigError;
pub use head::RequestHead;
pub use placeholder::{
    AwsPlaceholder, AwsPlaceholders, PLACEHOLDER_KEY_PREFIX, is_placeholder_key,
};
pub use resign::{Resigned, resign};
pub use sessions::AwsSessions;
pub use sts::{StsClient, StsError};
pub use verify::{PayloadMode, Verified, verify};
