//! Master key rotation: every record re-sealed in one write transaction, coordinated with the
//! key file so a crash at any point leaves the vault readable with the old or the new key.
//!
//! Order for a key-file vault rotating to a generated key:
//! 1. write the new key to `<keyfile>.next` (0600, fsync file and directory);
//! 2. one redb transaction re-seals records, manifest and key-check and stores the new key's
//!    fingerprint; commit;
//! 3. rename `.next` over the key file (fsync directory).
//!
//! `Vault::open` compares the stored fingerprint with both files, so after a crash before 2
//! commits it uses (and keeps) the old file, and after it commits it finishes step 3.

use std::path::PathBuf;

use redb::ReadableTable;

use crate::error::{Result, VaultError};
use crate::key_file;
use crate::manifest::Manifest;
use crate::master_key::{KeyOrigin, MasterKey};
use crate::open::write_key_metadata;
use crate::record::Record;
use crate::tables;
use crate::vault::Vault;

/// Points between the steps of a rotation; tests crash the process at each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RotationStage {
    NextKeyWritten,
    BeforeCommit,
    Committed,
    Renamed,
}

impl Vault {
    /// Re-seals every secret under `new` atomically and makes `new` the vault's key.
    ///
    /// How the new key is kept depends on where it came from: a [`MasterKey::generate`]d key
    /// replaces the current key file (only possible when the current key is a key file); a
    /// passphrase key stores its argon2id parameters in the same transaction; a key loaded from
    /// another key file or systemd credential is assumed already stored by the operator.
    /// A record that fails authentication aborts the rotation (remove it first).
    pub fn rotate_key(&self, new: MasterKey) -> Result<()> {
        self.rotate_key_with_hook(new, &mut |_| {})
    }

    pub(crate) fn rotate_key_with_hook(
        &self,
        mut new: MasterKey,
        hook: &mut dyn FnMut(RotationStage),
    ) -> Result<()> {
        let mut current = self.key.write().map_err(|_| VaultError::Poisoned)?;
        if current.fingerprint() == new.fingerprint() {
            return Ok(());
        }
        let staged: Option<PathBuf> = match (new.origin(), current.key_file_path()) {
            (KeyOrigin::Generated, Some(path)) => Some(path.to_path_buf()),
            (KeyOrigin::Generated, None) => {
                return Err(VaultError::RotationNeedsPersistentKey {
                    origin: current.origin().to_string(),
                });
            }
            _ => None,
        };
        if let Some(path) = &staged {
            key_file::write_next(path, new.bytes())?;
            hook(RotationStage::NextKeyWritten);
        }
        if let Err(e) = self.reseal_all(&current, &new, hook) {
            if let Some(path) = &staged {
                // Nothing committed, so the staged key is useless; open would discard it too.
                if let Err(clean) = key_file::remove_if_present(&key_file::next_path(path)) {
                    tracing::warn!(error = %clean, "could not remove staged key");
                }
            }
            return Err(e);
        }
        hook(RotationStage::Committed);
        if let Some(path) = staged {
            key_file::promote_next(&path)?;
            new.set_origin(KeyOrigin::KeyFile(path));
            hook(RotationStage::Renamed);
        }
        tracing::info!(
            fingerprint = %hex::encode(&new.fingerprint()[..8]),
            origin = %new.origin(),
            "vault master key rotated"
        );
        *current = new;
        Ok(())
    }

    fn reseal_all(
        &self,
        old: &MasterKey,
        new: &MasterKey,
        hook: &mut dyn FnMut(RotationStage),
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let manifest = Manifest::load(&meta, old)?;
            let mut secrets = txn.open_table(tables::SECRETS)?;
            let mut resealed = Vec::new();
            for entry in secrets.iter()? {
                let (name, raw) = entry?;
                let name = name.value().to_owned();
                let record = Record::decode(&name, raw.value())?;
                let plain = record.open(&name, old)?;
                let fresh = Record::seal(&name, record.header, new, &plain)?;
                resealed.push((name, fresh.encode()));
            }
            for (name, bytes) in &resealed {
                secrets.insert(name.as_str(), bytes.as_slice())?;
            }
            manifest.store(&mut meta, new)?;
            write_key_metadata(&mut meta, new)?;
            hook(RotationStage::BeforeCommit);
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    use super::*;
    use crate::key_source::KeySource;

    const STAGES: [RotationStage; 4] = [
        RotationStage::NextKeyWritten,
        RotationStage::BeforeCommit,
        RotationStage::Committed,
        RotationStage::Renamed,
    ];
    const CHILD_DIR: &str = "CORDON_VAULT_TEST_CRASH_DIR";
    const CHILD_STAGE: &str = "CORDON_VAULT_TEST_CRASH_STAGE";
    const SELF_TEST: &str =
        "rotate::tests::crash_at_every_rotation_stage_leaves_all_secrets_readable";

    fn open(dir: &Path) -> Result<Vault> {
        let db = Arc::new(redb::Database::create(dir.join("cordon.redb")).unwrap());
        let key = MasterKey::load(&KeySource::KeyFile(dir.join("vault.key")), false)?;
        Vault::open(db, key)
    }

    /// Runs in the re-executed test binary: rotates and aborts the process (no destructors,
    /// no clean database shutdown) at the requested stage.
    fn crash_child(dir: &Path, stage: usize) -> ! {
        crate::disable_core_dumps().unwrap();
        let vault = open(dir).unwrap();
        let new = MasterKey::generate().unwrap();
        vault
            .rotate_key_with_hook(new, &mut |s| {
                if s == STAGES[stage] {
                    std::process::abort();
                }
            })
            .unwrap();
        std::process::exit(0);
    }

    #[test]
    fn crash_at_every_rotation_stage_leaves_all_secrets_readable() {
        if let (Some(dir), Some(stage)) =
            (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_STAGE))
        {
            let stage: usize = stage.to_str().unwrap().parse().unwrap();
            crash_child(Path::new(&dir), stage);
        }
        for (i, stage) in STAGES.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let old_fp = {
                let db = Arc::new(redb::Database::create(dir.path().join("cordon.redb")).unwrap());
                let key = MasterKey::load(&KeySource::KeyFile(dir.path().join("vault.key")), true)
                    .unwrap();
                let vault = Vault::open(db, key).unwrap();
                vault.set("github", "token", b"ghp_one").unwrap();
                vault.set("stripe", "api-key", b"sk_two").unwrap();
                vault.key_fingerprint().unwrap()
            };
            let status = Command::new(std::env::current_exe().unwrap())
                .args([SELF_TEST, "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_STAGE, i.to_string())
                .status()
                .unwrap();
            assert!(!status.success(), "child should have crashed at {stage:?}");

            let vault =
                open(dir.path()).unwrap_or_else(|e| panic!("open after crash at {stage:?}: {e}"));
            assert_eq!(
                vault.get("github").unwrap().expose(),
                b"ghp_one",
                "{stage:?}"
            );
            assert_eq!(
                vault.get("stripe").unwrap().expose(),
                b"sk_two",
                "{stage:?}"
            );
            let rotated = vault.key_fingerprint().unwrap() != old_fp;
            let expect_rotated = matches!(stage, RotationStage::Committed | RotationStage::Renamed);
            assert_eq!(rotated, expect_rotated, "{stage:?}");
            assert!(
                !key_file::next_path(&dir.path().join("vault.key")).exists(),
                "{stage:?}"
            );
            drop(vault);
            // And the state open settled on is stable: a second open needs no recovery.
            let again = open(dir.path()).unwrap();
            assert_eq!(again.get("github").unwrap().expose(), b"ghp_one");
        }
    }

    #[test]
    fn half_written_staged_key_is_discarded_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Arc::new(redb::Database::create(dir.path().join("cordon.redb")).unwrap());
            let key =
                MasterKey::load(&KeySource::KeyFile(dir.path().join("vault.key")), true).unwrap();
            Vault::open(db, key)
                .unwrap()
                .set("github", "token", b"ghp_one")
                .unwrap();
        }
        let next = key_file::next_path(&dir.path().join("vault.key"));
        std::fs::write(&next, b"partial").unwrap();
        let vault = open(dir.path()).unwrap();
        assert_eq!(vault.get("github").unwrap().expose(), b"ghp_one");
        assert!(!next.exists());
    }

    #[test]
    fn failed_rotation_leaves_old_key_and_no_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(redb::Database::create(dir.path().join("cordon.redb")).unwrap());
        let key = MasterKey::load(&KeySource::KeyFile(dir.path().join("vault.key")), true).unwrap();
        let vault = Vault::open(db.clone(), key).unwrap();
        vault.set("good", "token", b"fine").unwrap();
        vault.set("bad", "token", b"will be damaged").unwrap();
        let fp = vault.key_fingerprint().unwrap();
        {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(tables::SECRETS).unwrap();
                let mut raw = t.get("bad").unwrap().unwrap().value().to_vec();
                let last = raw.len() - 1;
                raw[last] ^= 0x80;
                t.insert("bad", raw.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let err = vault
            .rotate_key(MasterKey::generate().unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vault record \"bad\" failed authentication"
        );
        assert_eq!(vault.key_fingerprint().unwrap(), fp);
        assert_eq!(vault.get("good").unwrap().expose(), b"fine");
        assert!(!key_file::next_path(&dir.path().join("vault.key")).exists());
    }
}
