//! Cordon's credential vault.
//!
//! Real credentials live only in this vault (sealed with AES-256-GCM under a master key, in the
//! daemon's shared redb database) and in requests the proxy forwards after policy allowed them.
//! Agents only ever see placeholders. See `docs/vault.md` for the threat model.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use cordon_vault::{KeySource, MasterKey, Vault};
//! cordon_vault::disable_core_dumps()?;
//! let db = Arc::new(redb::Database::create("/var/lib/cordon/cordon.redb")?);
//! let source = KeySource::detect("/var/lib/cordon/vault.key".into());
//! let vault = Vault::open(db, MasterKey::load(&source, true)?)?;
//! vault.set("deploy-bot-github", "token", b"ghp_...")?;
//! let secret = vault.get("deploy-bot-github")?;
//! vault.mark_used("deploy-bot-github", "deploy-bot")?;
//! # let _ = secret; Ok(()) }
//! ```

mod entries;
mod error;
mod hardening;
mod kdf;
mod key_file;
mod key_source;
mod manifest;
mod master_key;
mod name;
mod open;
mod record;
mod redact;
mod rotate;
mod seal;
mod secret;
mod tables;
mod usage;
mod vault;

pub use entries::{
    AWS_SESSION_MAX_SECS, AWS_SESSION_MIN_SECS, AwsRoleEntry, GithubAppEntry, KIND_AWS_ROLE,
    KIND_GITHUB_APP,
};
pub use error::{Result, VaultError};
pub use hardening::disable_core_dumps;
pub use kdf::KdfParams;
pub use key_source::{KeySource, SYSTEMD_CREDENTIAL_NAME};
pub use master_key::{KEY_LEN, KeyOrigin, MasterKey};
pub use name::validate as validate_name;
pub use open::verify_key_read_only;
pub use redact::{REDACTED, REDACTED_STR, Redactor, redact};
pub use secret::Secret;
pub use usage::SecretInfo;
pub use vault::Vault;

/// Names of the redb tables the vault owns in the shared database.
pub const TABLE_NAMES: [&str; 3] = ["vault_secrets", "vault_usage", "vault_meta"];
