mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::{Fixture, sha256_file};
use cordon_vault::{KdfParams, KeyOrigin, KeySource, MasterKey, Vault, VaultError};
use redb::Database;
use zeroize::Zeroizing;

fn passphrase_source(db: &Arc<Database>, pass: &str) -> KeySource {
    KeySource::Passphrase {
        passphrase: Zeroizing::new(pass.to_owned()),
        db: db.clone(),
        // Tiny costs keep debug-build tests fast; production uses KdfParams::recommended().
        params: KdfParams::with_costs(256, 1, 1).unwrap(),
    }
}

#[test]
fn key_file_is_created_0600_at_first_start_and_reused() {
    let f = Fixture::new();
    {
        let (_db, vault) = f.vault();
        vault.set("gh", "token", b"x").unwrap();
    }
    let meta = std::fs::metadata(f.key_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let (_db, vault) = f.vault();
    assert_eq!(vault.get("gh").unwrap().expose(), b"x");
}

#[test]
fn missing_key_file_without_create_is_an_error_naming_it() {
    let f = Fixture::new();
    let err = MasterKey::load(&KeySource::KeyFile(f.key_path()), false).unwrap_err();
    assert!(err.to_string().contains("vault.key"), "{err}");
}

#[test]
fn world_readable_key_file_is_refused() {
    let f = Fixture::new();
    drop(f.vault());
    std::fs::set_permissions(f.key_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = MasterKey::load(&KeySource::KeyFile(f.key_path()), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&f.key_path().display().to_string()) && err.contains("0644"),
        "{err}"
    );
}

#[test]
fn wrong_key_is_rejected_in_one_line_and_database_bytes_are_unchanged() {
    let f = Fixture::new();
    {
        let (_db, vault) = f.vault();
        vault.set("gh", "token", b"ghp").unwrap();
    }
    // Whatever redb itself does on open/close is excluded by hashing while the file is open.
    let db = f.db();
    let before = sha256_file(&f.db_path());
    let err = Vault::open(db.clone(), MasterKey::generate().unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::WrongKey { .. }));
    assert!(
        !msg.contains('\n') && msg.contains("does not open this vault"),
        "{msg}"
    );
    assert_eq!(
        sha256_file(&f.db_path()),
        before,
        "wrong key must not write"
    );
    drop(db);
    let (_db, vault) = f.vault();
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
}

#[test]
fn passphrase_vault_opens_with_right_passphrase_only() {
    let f = Fixture::new();
    let db = f.db();
    {
        let key = MasterKey::load(&passphrase_source(&db, "correct horse"), true).unwrap();
        let vault = Vault::open(db.clone(), key).unwrap();
        vault.set("gh", "token", b"ghp").unwrap();
    }
    let before = sha256_file(&f.db_path());
    let wrong = MasterKey::load(&passphrase_source(&db, "battery staple"), false).unwrap();
    assert!(matches!(
        Vault::open(db.clone(), wrong),
        Err(VaultError::WrongKey { .. })
    ));
    assert_eq!(sha256_file(&f.db_path()), before);
    let right = MasterKey::load(&passphrase_source(&db, "correct horse"), false).unwrap();
    let vault = Vault::open(db.clone(), right).unwrap();
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
}

#[test]
fn passphrase_without_stored_salt_and_no_create_is_refused() {
    let f = Fixture::new();
    let db = f.db();
    let err = MasterKey::load(&passphrase_source(&db, "pw"), false).unwrap_err();
    assert!(matches!(err, VaultError::NoKdfParameters));
}

#[test]
fn rotation_to_generated_key_rewrites_key_file_and_old_key_stops_working() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"ghp").unwrap();
    vault.set("stripe", "api-key", b"sk").unwrap();
    let old_file = std::fs::read(f.key_path()).unwrap();
    vault.rotate_key(MasterKey::generate().unwrap()).unwrap();
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
    let new_file = std::fs::read(f.key_path()).unwrap();
    assert_ne!(old_file, new_file);
    assert_eq!(
        std::fs::metadata(f.key_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    drop(vault);

    let tmp = f.dir.path().join("old.key");
    std::fs::write(&tmp, &old_file).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let old_key = MasterKey::load(&KeySource::KeyFile(tmp), false).unwrap();
    assert!(matches!(
        Vault::open(db.clone(), old_key),
        Err(VaultError::WrongKey { .. })
    ));
    let new_key = MasterKey::load(&KeySource::KeyFile(f.key_path()), false).unwrap();
    let vault = Vault::open(db, new_key).unwrap();
    assert_eq!(vault.get("stripe").unwrap().expose(), b"sk");
    assert_eq!(
        vault
            .list()
            .unwrap()
            .iter()
            .map(|i| i.version)
            .collect::<Vec<_>>(),
        vec![1, 1]
    );
}

#[test]
fn rotation_from_key_file_to_passphrase_and_back() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"ghp").unwrap();
    let params = KdfParams::with_costs(256, 1, 1).unwrap();
    vault
        .rotate_key(MasterKey::from_new_passphrase("new pass", params).unwrap())
        .unwrap();
    drop(vault);
    let key = MasterKey::load(&passphrase_source(&db, "new pass"), false).unwrap();
    let vault = Vault::open(db.clone(), key).unwrap();
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
    // A generated key cannot be persisted anywhere from a passphrase vault.
    let err = vault
        .rotate_key(MasterKey::generate().unwrap())
        .unwrap_err();
    assert!(matches!(err, VaultError::RotationNeedsPersistentKey { .. }));
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
    // Back to a (pre-provisioned) key file: the kdf record is dropped in the same transaction.
    let other = f.dir.path().join("other.key");
    let file_key = MasterKey::load(&KeySource::KeyFile(other.clone()), true).unwrap();
    assert!(matches!(file_key.origin(), KeyOrigin::KeyFile(_)));
    vault.rotate_key(file_key).unwrap();
    drop(vault);
    assert!(matches!(
        MasterKey::load(&passphrase_source(&db, "new pass"), false),
        Err(VaultError::NoKdfParameters)
    ));
    let vault = Vault::open(
        db,
        MasterKey::load(&KeySource::KeyFile(other), false).unwrap(),
    )
    .unwrap();
    assert_eq!(vault.get("gh").unwrap().expose(), b"ghp");
}

#[test]
fn master_key_and_key_source_debug_print_nothing_secret() {
    let f = Fixture::new();
    let db = f.db();
    let src = passphrase_source(&db, "hunter2-passphrase");
    assert!(!format!("{src:?}").contains("hunter2"));
    let key = MasterKey::load(&src, true).unwrap();
    let dbg = format!("{key:?}");
    assert_eq!(dbg, "MasterKey { origin: Passphrase, .. }");
}
