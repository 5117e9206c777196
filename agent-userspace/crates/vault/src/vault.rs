//! Secret operations on an open vault.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use crate::entries::{AwsRoleEntry, GithubAppEntry, KIND_AWS_ROLE, KIND_GITHUB_APP};
use crate::error::{Result, VaultError};
use crate::manifest::{Entry, Manifest};
use crate::master_key::MasterKey;
use crate::name::{validate, validate_kind};
use crate::record::{Record, RecordHeader};
use crate::secret::Secret;
use crate::tables;
use crate::usage::{SecretInfo, Usage, from_ms, now_ms};

/// The credential vault. Cheap to share (`Arc<Vault>`); every method is safe to call from many
/// threads or tokio tasks at once (reads run in parallel, redb serialises writers).
pub struct Vault {
    pub(crate) db: Arc<Database>,
    /// Write-locked only while a rotation swaps keys, so no reader ever pairs the old key with
    /// records sealed under the new one.
    pub(crate) key: RwLock<MasterKey>,
    /// When each (entry, agent) was last marked used, to write at most one mark per
    /// `USAGE_EVERY` (see `usage_due`).
    marked: Mutex<HashMap<(String, String), Instant>>,
}

/// How often an entry's use by one agent is written: usage is a "last used" record, and a
/// write transaction per injected request competed with the audit writer for redb's lock.
pub const USAGE_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    pub(crate) fn from_parts(db: Arc<Database>, key: RwLock<MasterKey>) -> Vault {
        Vault {
            db,
            key,
            marked: Mutex::default(),
        }
    }

    pub(crate) fn key(&self) -> Result<RwLockReadGuard<'_, MasterKey>> {
        self.key.read().map_err(|_| VaultError::Poisoned)
    }

    /// Fingerprint of the current master key (hex-encode for display).
    pub fn key_fingerprint(&self) -> Result<[u8; 32]> {
        Ok(self.key()?.fingerprint())
    }

    /// Stores `value` under `name` as a new version (1 for a new name) and returns the version.
    pub fn set(&self, name: &str, kind: &str, value: &[u8]) -> Result<u64> {
        validate("name", name)?;
        validate_kind(kind)?;
        crate::entries::check_value(name, kind, value)?;
        let key = self.key()?;
        let now = now_ms();
        let txn = self.db.begin_write()?;
        let version;
        {
            let mut meta = txn.open_table(tables::META)?;
            let mut manifest = Manifest::load(&meta, &key)?;
            version = manifest.next_version(name);
            let mut secrets = txn.open_table(tables::SECRETS)?;
            let created_ms = match secrets.get(name)? {
                Some(old) if manifest.live_version(name).is_some() => {
                    Record::decode(name, old.value()).map_or(now, |r| r.header.created_ms)
                }
                _ => now,
            };
            let header = RecordHeader {
                version,
                created_ms,
                updated_ms: now,
                kind: kind.to_owned(),
            };
            let record = Record::seal(name, header, &key, value)?;
            secrets.insert(name, record.encode().as_slice())?;
            manifest.entries.insert(
                name.to_owned(),
                Entry {
                    version,
                    removed: false,
                },
            );
            manifest.store(&mut meta, &key)?;
        }
        txn.commit()?;
        tracing::info!(secret = name, version, "vault secret stored");
        Ok(version)
    }

    /// Decrypts the current version of `name`. Read-only: usage is recorded by [`mark_used`].
    ///
    /// [`mark_used`]: Vault::mark_used
    pub fn get(&self, name: &str) -> Result<Secret> {
        self.get_with_kind(name).map(|(_, secret)| secret)
    }

    /// The `github-app` entry `name`; any other kind is an error.
    pub fn github_app(&self, name: &str) -> Result<GithubAppEntry> {
        let (kind, secret) = self.get_with_kind(name)?;
        crate::entries::decode(name, &kind, KIND_GITHUB_APP, &secret)
    }

    /// The `aws-role` entry `name`; any other kind is an error.
    pub fn aws_role(&self, name: &str) -> Result<AwsRoleEntry> {
        let (kind, secret) = self.get_with_kind(name)?;
        crate::entries::decode(name, &kind, KIND_AWS_ROLE, &secret)
    }

    /// The current version of `name` and its (authenticated) kind.
    pub fn get_with_kind(&self, name: &str) -> Result<(String, Secret)> {
        validate("name", name)?;
        let key = self.key()?;
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let manifest = Manifest::load(&meta, &key)?;
        let secrets = txn.open_table(tables::SECRETS)?;
        let raw = secrets.get(name)?;
        let (expected, raw) = match (manifest.live_version(name), raw) {
            (None, None) => return Err(VaultError::NotFound(name.to_owned())),
            (None, Some(_)) => {
                return Err(VaultError::RecordMalformed {
                    name: name.to_owned(),
                    reason: "not listed in the sealed manifest (injected or left over)".into(),
                });
            }
            (Some(_), None) => {
                return Err(VaultError::RecordMissing {
                    name: name.to_owned(),
                });
            }
            (Some(v), Some(raw)) => (v, raw),
        };
        let record = Record::decode(name, raw.value())?;
        let plain = record.open(name, &key)?;
        if record.header.version != expected {
            return Err(VaultError::RecordVersionMismatch {
                name: name.to_owned(),
                found: record.header.version,
                expected,
            });
        }
        Ok((record.header.kind, Secret::new(plain)))
    }

    /// Whether `agent`'s use of `name` is due to be marked (`mark_used`): true at most once
    /// per `USAGE_EVERY` for each pair, and it counts the mark as made.
    pub fn usage_due(&self, name: &str, agent: &str) -> bool {
        let now = Instant::now();
        let mut marked = self.marked.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (name.to_owned(), agent.to_owned());
        match marked.get(&key) {
            Some(at) if now.duration_since(*at) < USAGE_EVERY => false,
            _ => {
                marked.insert(key, now);
                true
            }
        }
    }

    /// Notes that `agent` had `name` injected. Commits without fsync: usage is bookkeeping and
    /// becomes durable with the next durable commit to the shared database.
    pub fn mark_used(&self, name: &str, agent: &str) -> Result<()> {
        validate("name", name)?;
        validate("agent", agent)?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| VaultError::Database(redb::Error::from(e)))?;
        {
            if !txn.open_table(tables::SECRETS)?.get(name)?.is_some() {
                return Err(VaultError::NotFound(name.to_owned()));
            }
            let mut usage_table = txn.open_table(tables::USAGE)?;
            let mut usage = match usage_table.get(name)? {
                Some(v) => Usage::decode(v.value()),
                None => Usage::default(),
            };
            usage.record(agent, now_ms());
            usage_table.insert(name, usage.encode().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Metadata of every stored secret, sorted by name. Never decrypts or returns values.
    pub fn list(&self) -> Result<Vec<SecretInfo>> {
        let txn = self.db.begin_read()?;
        let secrets = txn.open_table(tables::SECRETS)?;
        let usage_table = txn.open_table(tables::USAGE)?;
        let mut out = Vec::new();
        for entry in secrets.iter()? {
            let (name, raw) = entry?;
            let name = name.value().to_owned();
            let usage = match usage_table.get(name.as_str())? {
                Some(v) => Usage::decode(v.value()),
                None => Usage::default(),
            };
            let mut info = SecretInfo {
                name: name.clone(),
                kind: String::new(),
                version: 0,
                created: None,
                updated: None,
                last_used: usage.last_used_ms.and_then(from_ms),
                used_by: usage.used_by,
                problem: None,
            };
            match Record::decode(&name, raw.value()) {
                Ok(r) => {
                    info.kind = r.header.kind;
                    info.version = r.header.version;
                    info.created = from_ms(r.header.created_ms);
                    info.updated = from_ms(r.header.updated_ms);
                }
                Err(e) => info.problem = Some(e.to_string()),
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Deletes `name` and its usage. The manifest remembers the last version so the name's
    /// version sequence continues if it is stored again.
    pub fn remove(&self, name: &str) -> Result<()> {
        validate("name", name)?;
        let key = self.key()?;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let mut manifest = Manifest::load(&meta, &key)?;
            let existed = txn.open_table(tables::SECRETS)?.remove(name)?.is_some();
            txn.open_table(tables::USAGE)?.remove(name)?;
            let live = manifest.live_version(name);
            if !existed && live.is_none() {
                return Err(VaultError::NotFound(name.to_owned()));
            }
            if let Some(entry) = manifest.entries.get_mut(name) {
                entry.removed = true;
            }
            manifest.store(&mut meta, &key)?;
        }
        txn.commit()?;
        tracing::info!(secret = name, "vault secret removed");
        Ok(())
    }
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    #[test]
    fn usage_is_due_once_per_interval_for_each_entry_and_agent() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("v.redb")).unwrap());
        let vault = Vault::open(db, MasterKey::generate().unwrap()).unwrap();
        assert!(vault.usage_due("gh", "bot"));
        assert!(!vault.usage_due("gh", "bot"));
        assert!(vault.usage_due("gh", "other-bot"));
        assert!(vault.usage_due("stripe", "bot"));
        // Once the interval has passed, the pair is due again.
        let back = Instant::now().checked_sub(USAGE_EVERY).unwrap();
        vault
            .marked
            .lock()
            .unwrap()
            .insert(("gh".into(), "bot".into()), back);
        assert!(vault.usage_due("gh", "bot"));
    }
}
