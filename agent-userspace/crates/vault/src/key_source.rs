//! Where the master key comes from, and loading it.

use std::path::PathBuf;
use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::kdf::KdfParams;
use crate::key_file;
use crate::master_key::{KeyOrigin, MasterKey};
use crate::tables;

/// File name of the systemd credential inside `$CREDENTIALS_DIRECTORY`
/// (`LoadCredentialEncrypted=cordon-vault-key:...` in the unit).
pub const SYSTEMD_CREDENTIAL_NAME: &str = "cordon-vault-key";

/// Where to get the master key, in the daemon's order of preference.
pub enum KeySource {
    /// `$CREDENTIALS_DIRECTORY/cordon-vault-key`, provided (and usually TPM-sealed) by systemd.
    SystemdCredential,
    /// A root-only key file, created with 32 random bytes on first start when allowed.
    KeyFile(PathBuf),
    /// A passphrase stretched with argon2id. The salt lives in `db`; `params` are used only
    /// when no salt is stored yet and `create_if_missing` is set.
    Passphrase {
        passphrase: Zeroizing<String>,
        db: Arc<Database>,
        params: KdfParams,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::SystemdCredential => f.write_str("SystemdCredential"),
            KeySource::KeyFile(p) => f.debug_tuple("KeyFile").field(p).finish(),
            KeySource::Passphrase { .. } => f.write_str("Passphrase(<redacted>)"),
        }
    }
}

impl KeySource {
    /// The systemd credential if the daemon was started with one, else `key_file`.
    pub fn detect(key_file: PathBuf) -> KeySource {
        match systemd_credential_path() {
            Ok(p) if p.exists() => KeySource::SystemdCredential,
            _ => KeySource::KeyFile(key_file),
        }
    }
}

fn systemd_credential_path() -> Result<PathBuf> {
    let dir =
        std::env::var_os("CREDENTIALS_DIRECTORY").ok_or(VaultError::NoCredentialsDirectory)?;
    Ok(PathBuf::from(dir).join(SYSTEMD_CREDENTIAL_NAME))
}

impl MasterKey {
    /// Loads the key from `source`. With `create_if_missing`, a missing key file is created
    /// (32 random bytes, mode 0600) and a passphrase vault without a stored salt gets a fresh
    /// one (written by `Vault::open`). A systemd credential is never created.
    pub fn load(source: &KeySource, create_if_missing: bool) -> Result<MasterKey> {
        match source {
            KeySource::SystemdCredential => {
                let path = systemd_credential_path()?;
                let bytes = key_file::read(&path)?
                    .ok_or_else(|| VaultError::KeyFileMissing { path: path.clone() })?;
                Ok(MasterKey::from_bytes(
                    bytes,
                    KeyOrigin::SystemdCredential(path),
                ))
            }
            KeySource::KeyFile(path) => load_key_file(path, create_if_missing),
            KeySource::Passphrase {
                passphrase,
                db,
                params,
            } => {
                let stored = read_kdf(db)?;
                let params = match stored {
                    Some(p) => p,
                    None if create_if_missing => params.clone(),
                    None => return Err(VaultError::NoKdfParameters),
                };
                let bytes = params.derive(passphrase.as_bytes())?;
                Ok(MasterKey::from_bytes(bytes, KeyOrigin::Passphrase(params)))
            }
        }
    }

    /// A key derived from a new passphrase with a fresh salt, as the target of `rotate_key`.
    pub fn from_new_passphrase(passphrase: &str, params: KdfParams) -> Result<MasterKey> {
        let bytes = params.derive(passphrase.as_bytes())?;
        Ok(MasterKey::from_bytes(bytes, KeyOrigin::Passphrase(params)))
    }
}

fn load_key_file(path: &std::path::Path, create_if_missing: bool) -> Result<MasterKey> {
    let pending_next = key_file::read(&key_file::next_path(path))
        // A half-written `.next` from a crash mid-write is just stale; Vault::open removes it
        // once the database confirms the main key is current.
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring unreadable staged key");
            None
        });
    let origin = KeyOrigin::KeyFile(path.to_path_buf());
    let mut key = match key_file::read(path)? {
        Some(bytes) => MasterKey::from_bytes(bytes, origin),
        None if create_if_missing && pending_next.is_none() => {
            let key = MasterKey::generate()?;
            key_file::create(path, key.bytes())?;
            tracing::info!(path = %path.display(), "created new vault key file");
            let mut key = key;
            key.set_origin(origin);
            key
        }
        None => {
            return Err(VaultError::KeyFileMissing {
                path: path.to_path_buf(),
            });
        }
    };
    key.pending_next = pending_next;
    Ok(key)
}

pub(crate) fn read_kdf(db: &Database) -> Result<Option<KdfParams>> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(tables::META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match table.get(tables::META_KDF)? {
        Some(v) => KdfParams::from_json(v.value()).map(Some),
        None => Ok(None),
    }
}
