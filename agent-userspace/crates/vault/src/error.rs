//! The one error type every vault operation returns.

use std::path::PathBuf;

/// Everything that can go wrong in the vault. Messages name the secret, file or field at fault
/// and never contain key material or secret values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidName {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("vault has no secret named \"{0}\"")]
    NotFound(String),

    /// A structured entry (`github-app`, `aws-role`) whose value does not
    /// hold what its kind needs. The reason names fields, never values.
    #[error("vault entry \"{name}\" of kind {kind} is invalid: {reason}")]
    InvalidEntry {
        name: String,
        kind: String,
        reason: String,
    },

    #[error("vault entry \"{name}\" is of kind {found}, not {expected}")]
    WrongKind {
        name: String,
        found: String,
        expected: &'static str,
    },

    #[error("vault record \"{name}\" failed authentication")]
    RecordAuthentication { name: String },

    #[error("vault record \"{name}\" is malformed: {reason}")]
    RecordMalformed { name: String, reason: String },

    #[error(
        "vault record \"{name}\" is version {found} but the manifest expects version {expected} (rolled back or replaced?)"
    )]
    RecordVersionMismatch {
        name: String,
        found: u64,
        expected: u64,
    },

    #[error("vault record \"{name}\" is listed in the manifest but missing from the database")]
    RecordMissing { name: String },

    #[error("vault {what} failed authentication")]
    MetadataAuthentication { what: &'static str },

    #[error("vault {what} is malformed: {reason}")]
    MetadataMalformed { what: &'static str, reason: String },

    #[error(
        "master key from {origin} does not open this vault (wrong key, wrong passphrase or wrong database)"
    )]
    WrongKey { origin: String },

    #[error(
        "vault database holds secrets but no key-check record; refusing to initialise a new key over them"
    )]
    MissingKeyCheck,

    #[error(
        "key file {path} has mode {mode:04o}; it must not be readable or writable by group or others (chmod 600)"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },

    #[error("key file {path} is owned by uid {owner}, but the vault runs as uid {uid}")]
    KeyFileWrongOwner { path: PathBuf, owner: u32, uid: u32 },

    #[error("key file {path} is not a regular file")]
    KeyFileNotRegular { path: PathBuf },

    #[error("key file {path} does not hold a key: {reason}")]
    KeyFileMalformed { path: PathBuf, reason: &'static str },

    #[error("key file {path} does not exist (and creating it was not requested)")]
    KeyFileMissing { path: PathBuf },

    #[error("{action} {path}: {source}")]
    KeyFileIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "CREDENTIALS_DIRECTORY is not set; the daemon was not started with a systemd credential"
    )]
    NoCredentialsDirectory,

    #[error(
        "passphrase key: the vault has no stored argon2id salt and creating one was not requested"
    )]
    NoKdfParameters,

    #[error("passphrase key derivation failed: {0}")]
    Kdf(String),

    #[error("passphrase must not be empty")]
    EmptyPassphrase,

    #[error(
        "cannot rotate to a generated key: the current key comes from {origin}, which the vault cannot write; load the new key from a key file or passphrase instead"
    )]
    RotationNeedsPersistentKey { origin: String },

    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),

    #[error("vault lock poisoned by a panic in another thread")]
    Poisoned,

    #[error("disabling core dumps failed ({call}): {source}")]
    Hardening {
        call: &'static str,
        #[source]
        source: nix::Error,
    },

    #[error("vault database: {0}")]
    Database(#[from] redb::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for VaultError {
            fn from(e: $t) -> Self {
                VaultError::Database(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = VaultError> = std::result::Result<T, E>;
