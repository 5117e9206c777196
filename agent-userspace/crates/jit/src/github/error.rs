//! Why a GitHub App token could not be minted or revoked.

use crate::https::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("the app's private key is not a usable RSA PEM key: {0}")]
    PrivateKey(String),
    #[error("signing the app JWT: {0}")]
    Jwt(String),
    #[error("{0} is not a usable GitHub API base URL")]
    BaseUrl(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    /// GitHub's answer, with its `message` (never a token).
    #[error("GitHub answered {status} to {what}: {message}")]
    Refused {
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("GitHub's token answer is unreadable: {0}")]
    Answer(String),
    /// The `github-app` entry could not be read from the vault.
    #[error(transparent)]
    Vault(#[from] cordon_vault::VaultError),
    /// The connector is cut for the agent, or the token was withdrawn
    /// while this request waited for it: nothing was minted.
    #[error(transparent)]
    Withdrawn(#[from] crate::cache::Withdrawn),
}
