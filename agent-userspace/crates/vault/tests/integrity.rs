mod common;

use common::{Fixture, tamper};
use cordon_vault::VaultError;

#[test]
fn bit_flipped_record_is_reported_by_name_and_others_still_open() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault
        .set("deploy-bot-github", "token", b"ghp_secret")
        .unwrap();
    vault.set("stripe", "api-key", b"sk_secret").unwrap();
    tamper(&db, "deploy-bot-github", |raw| {
        let i = raw.len() - 5;
        raw[i] ^= 0x01;
    });
    let err = vault.get("deploy-bot-github").unwrap_err();
    assert_eq!(
        err.to_string(),
        "vault record \"deploy-bot-github\" failed authentication"
    );
    assert_eq!(vault.get("stripe").unwrap().expose(), b"sk_secret");
}

#[test]
fn every_single_bit_flip_in_a_record_is_detected() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"ghp").unwrap();
    let original = common::raw_record(&db, "gh");
    for bit in 0..original.len() * 8 {
        tamper(&db, "gh", |raw| {
            *raw = original.clone();
            raw[bit / 8] ^= 1 << (bit % 8);
        });
        let err = vault.get("gh").expect_err("flipped bit must not decrypt");
        assert!(err.to_string().contains("\"gh\""), "bit {bit}: {err}");
    }
}

#[test]
fn truncated_record_is_reported_by_name_and_others_still_open() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"ghp_secret_value").unwrap();
    vault.set("stripe", "api-key", b"sk").unwrap();
    tamper(&db, "gh", |raw| raw.truncate(raw.len() - 7));
    assert_eq!(
        vault.get("gh").unwrap_err().to_string(),
        "vault record \"gh\" failed authentication"
    );
    tamper(&db, "gh", |raw| raw.truncate(10));
    let err = vault.get("gh").unwrap_err().to_string();
    assert!(err.starts_with("vault record \"gh\" is malformed"), "{err}");
    assert_eq!(vault.get("stripe").unwrap().expose(), b"sk");
    let list = vault.list().unwrap();
    assert!(list.iter().any(|i| i.name == "gh" && i.problem.is_some()));
    assert!(
        list.iter()
            .any(|i| i.name == "stripe" && i.problem.is_none())
    );
}

#[test]
fn record_copied_to_another_name_fails_authentication() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"github-token").unwrap();
    vault.set("stripe", "token", b"stripe-token").unwrap();
    let gh = common::raw_record(&db, "gh");
    tamper(&db, "stripe", |raw| *raw = gh);
    assert!(matches!(
        vault.get("stripe"),
        Err(VaultError::RecordAuthentication { name }) if name == "stripe"
    ));
}

#[test]
fn older_version_put_back_is_detected_as_rollback() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"revoked-token").unwrap();
    let v1 = common::raw_record(&db, "gh");
    vault.set("gh", "token", b"current-token").unwrap();
    tamper(&db, "gh", |raw| *raw = v1);
    let err = vault.get("gh").unwrap_err().to_string();
    assert!(
        err.contains("\"gh\" is version 1") && err.contains("expects version 2"),
        "{err}"
    );
}

#[test]
fn deleted_record_is_reported_missing_not_absent() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"x").unwrap();
    let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("vault_secrets");
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().remove("gh").unwrap();
    txn.commit().unwrap();
    assert!(matches!(
        vault.get("gh"),
        Err(VaultError::RecordMissing { .. })
    ));
}
