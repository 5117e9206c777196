//! Its own test binary: it sets CREDENTIALS_DIRECTORY, which no other test may observe.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use cordon_vault::{KeyOrigin, KeySource, MasterKey, Vault};

#[test]
fn systemd_credential_is_preferred_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let fallback = dir.path().join("vault.key");

    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe { std::env::set_var("CREDENTIALS_DIRECTORY", &creds) };
    assert!(matches!(
        KeySource::detect(fallback.clone()),
        KeySource::KeyFile(_)
    ));
    assert!(
        MasterKey::load(&KeySource::SystemdCredential, true).is_err(),
        "never created"
    );

    let cred = creds.join("cordon-vault-key");
    std::fs::write(&cred, format!("{}\n", hex::encode([0x42u8; 32]))).unwrap();
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o400)).unwrap();
    let source = KeySource::detect(fallback);
    assert!(matches!(source, KeySource::SystemdCredential));
    let key = MasterKey::load(&source, false).unwrap();
    assert!(matches!(key.origin(), KeyOrigin::SystemdCredential(_)));

    let db = Arc::new(redb::Database::create(dir.path().join("db.redb")).unwrap());
    let vault = Vault::open(db, key).unwrap();
    vault.set("gh", "token", b"x").unwrap();
    // The daemon cannot write a systemd credential, so a generated key is refused.
    assert!(vault.rotate_key(MasterKey::generate().unwrap()).is_err());
    assert_eq!(vault.get("gh").unwrap().expose(), b"x");
}
