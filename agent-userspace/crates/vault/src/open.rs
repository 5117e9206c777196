//! Opening a vault: first-use initialisation, key verification and finishing an interrupted
//! key-file rotation. A wrong key never causes a write.

use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableError};

use crate::error::{Result, VaultError};
use crate::key_file;
use crate::manifest::Manifest;
use crate::master_key::{KeyOrigin, MasterKey};
use crate::seal;
use crate::tables;
use crate::vault::Vault;

const KEY_CHECK_PLAINTEXT: &[u8] = b"cordon-vault key-check v1";
const KEY_CHECK_AAD: &[u8] = b"cordon-vault/key-check/v1";

enum Stored {
    Empty,
    RecordsWithoutKeyCheck,
    Initialised {
        key_check: Vec<u8>,
        fingerprint: Vec<u8>,
    },
}

impl Vault {
    /// Opens the vault in `db` with `key`. On a database without vault tables this initialises
    /// the vault (key-check, fingerprint, empty manifest, and argon2id parameters for a
    /// passphrase key). A key that does not match is rejected with [`VaultError::WrongKey`]
    /// before anything is written.
    pub fn open(db: Arc<Database>, mut key: MasterKey) -> Result<Vault> {
        let key = match read_stored(db.as_ref())? {
            Stored::Empty => {
                initialise(&db, &key)?;
                discard_pending_next(&mut key)?;
                tracing::info!(origin = %key.origin(), "initialised new vault");
                key
            }
            Stored::RecordsWithoutKeyCheck => return Err(VaultError::MissingKeyCheck),
            Stored::Initialised {
                key_check,
                fingerprint,
            } => select_key(key, &key_check, &fingerprint)?,
        };
        Ok(Vault::from_parts(db, RwLock::new(key)))
    }
}

fn read_stored(db: &impl ReadableDatabase) -> Result<Stored> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(tables::META) {
        Ok(t) => Some(t),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(meta) = meta
        && let Some(check) = meta.get(tables::META_KEY_CHECK)?
    {
        let fingerprint = meta
            .get(tables::META_FINGERPRINT)?
            .ok_or_else(|| VaultError::MetadataMalformed {
                what: "key fingerprint",
                reason: "missing while a key-check exists".into(),
            })?
            .value()
            .to_vec();
        return Ok(Stored::Initialised {
            key_check: check.value().to_vec(),
            fingerprint,
        });
    }
    let has_records = match txn.open_table(tables::SECRETS) {
        Ok(t) => !t.is_empty()?,
        Err(TableError::TableDoesNotExist(_)) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(if has_records {
        Stored::RecordsWithoutKeyCheck
    } else {
        Stored::Empty
    })
}

fn initialise(db: &Database, key: &MasterKey) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(tables::META)?;
        write_key_metadata(&mut meta, key)?;
        Manifest::default().store(&mut meta, key)?;
        // Created now so later read transactions never meet a missing table.
        txn.open_table(tables::SECRETS)?;
        txn.open_table(tables::USAGE)?;
    }
    txn.commit()?;
    Ok(())
}

/// Key-check, fingerprint and (for passphrase keys) argon2id parameters for `key`; shared by
/// first-use initialisation and rotation so both leave the same metadata behind.
pub(crate) fn write_key_metadata(
    meta: &mut redb::Table<&'static str, &'static [u8]>,
    key: &MasterKey,
) -> Result<()> {
    let check = seal::seal(key, KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)?;
    meta.insert(tables::META_KEY_CHECK, seal::to_blob(&check).as_slice())?;
    meta.insert(tables::META_FINGERPRINT, key.fingerprint().as_slice())?;
    match key.origin() {
        KeyOrigin::Passphrase(params) => {
            meta.insert(tables::META_KDF, params.to_json().as_slice())?;
        }
        _ => {
            meta.remove(tables::META_KDF)?;
        }
    }
    Ok(())
}

/// Checks `key` against an existing database file without opening it for
/// writing, so a wrong key leaves the file byte-for-byte unchanged (redb
/// rewrites its header when a writable handle closes). A missing file, or
/// one without a vault yet, passes: `Vault::open` initialises it. So does
/// a file left needing repair by a crash (see below).
pub fn verify_key_read_only(path: &std::path::Path, key: &MasterKey) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let db = match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        // After a crash the file needs repair, which only a writable open
        // does. Repair is unavoidable then; the key is still checked by
        // `Vault::open` before anything of the vault is written.
        Err(redb::DatabaseError::RepairAborted) => return Ok(()),
        Err(e) => return Err(redb::Error::from(e).into()),
    };
    match read_stored(&db)? {
        Stored::Empty => Ok(()),
        Stored::RecordsWithoutKeyCheck => Err(VaultError::MissingKeyCheck),
        Stored::Initialised {
            key_check,
            fingerprint,
        } => {
            if key.fingerprint().as_slice() == fingerprint && key_check_opens(key, &key_check) {
                return Ok(());
            }
            // A staged `<keyfile>.next` from an interrupted rotation may be
            // the right one; `Vault::open` decides and finishes the rename.
            if key.pending_next.is_some() {
                return Ok(());
            }
            Err(VaultError::WrongKey {
                origin: key.origin().to_string(),
            })
        }
    }
}

fn key_check_opens(key: &MasterKey, blob: &[u8]) -> bool {
    seal::open_blob(key, KEY_CHECK_AAD, blob).is_ok_and(|p| p.as_slice() == KEY_CHECK_PLAINTEXT)
}

/// Picks the key the database is sealed with: the loaded key, or the staged `<keyfile>.next`
/// left by a rotation that committed but crashed before renaming it into place.
fn select_key(mut key: MasterKey, key_check: &[u8], fingerprint: &[u8]) -> Result<MasterKey> {
    if key.fingerprint().as_slice() == fingerprint {
        if !key_check_opens(&key, key_check) {
            return Err(VaultError::MetadataAuthentication { what: "key-check" });
        }
        // The rotation that staged `.next` never committed; the staged key is garbage now.
        discard_pending_next(&mut key)?;
        return Ok(key);
    }
    if let (Some(next), Some(path)) = (key.pending_next.take(), key.key_file_path()) {
        let candidate = MasterKey::from_bytes(next, key.origin().clone());
        if candidate.fingerprint().as_slice() == fingerprint
            && key_check_opens(&candidate, key_check)
        {
            key_file::promote_next(path)?;
            tracing::warn!(path = %path.display(), "finished an interrupted vault key rotation");
            return Ok(candidate);
        }
    }
    Err(VaultError::WrongKey {
        origin: key.origin().to_string(),
    })
}

/// Once the database confirms the main key file is current, any `<keyfile>.next` (complete or
/// half-written) belongs to a rotation that never committed and is removed.
fn discard_pending_next(key: &mut MasterKey) -> Result<()> {
    key.pending_next = None;
    if let Some(path) = key.key_file_path() {
        let next = key_file::next_path(path);
        if next.exists() {
            tracing::warn!(path = %next.display(), "removing staged key of an uncommitted rotation");
            key_file::remove_if_present(&next)?;
        }
    }
    Ok(())
}
