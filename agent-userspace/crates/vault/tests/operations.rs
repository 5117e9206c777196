mod common;

use common::Fixture;
use cordon_vault::VaultError;

#[test]
fn set_then_get_returns_value_and_versions_increase() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    assert_eq!(
        vault.set("deploy-bot-github", "token", b"ghp_one").unwrap(),
        1
    );
    assert_eq!(vault.get("deploy-bot-github").unwrap().expose(), b"ghp_one");
    assert_eq!(
        vault.set("deploy-bot-github", "token", b"ghp_two").unwrap(),
        2
    );
    assert_eq!(vault.get("deploy-bot-github").unwrap().expose(), b"ghp_two");
}

#[test]
fn secrets_survive_reopening_the_database() {
    let f = Fixture::new();
    {
        let (_db, vault) = f.vault();
        vault.set("stripe", "api-key", b"sk_live_x").unwrap();
    }
    let (_db, vault) = f.vault();
    assert_eq!(vault.get("stripe").unwrap().expose(), b"sk_live_x");
}

#[test]
fn ciphertext_on_disk_does_not_contain_the_plaintext() {
    let f = Fixture::new();
    {
        let (_db, vault) = f.vault();
        vault
            .set("stripe", "api-key", b"sk_live_very_recognisable_value")
            .unwrap();
    }
    let bytes = std::fs::read(f.db_path()).unwrap();
    let needle = b"sk_live_very_recognisable_value";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn list_reports_metadata_and_usage_but_never_values() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    vault.set("b-token", "token", b"value-b").unwrap();
    vault.set("a-key", "api-key", b"value-a").unwrap();
    vault.set("a-key", "api-key", b"value-a2").unwrap();
    vault.mark_used("a-key", "deploy-bot").unwrap();
    vault.mark_used("a-key", "billing-bot").unwrap();
    vault.mark_used("a-key", "deploy-bot").unwrap();
    let list = vault.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "a-key");
    assert_eq!(list[0].kind, "api-key");
    assert_eq!(list[0].version, 2);
    assert_eq!(list[0].used_by, vec!["billing-bot", "deploy-bot"]);
    assert!(list[0].last_used.is_some());
    assert!(list[0].created <= list[0].updated);
    assert_eq!(list[1].name, "b-token");
    assert!(list[1].last_used.is_none() && list[1].used_by.is_empty());
    assert!(!format!("{list:?}").contains("value-"));
}

#[test]
fn get_does_not_record_usage_mark_used_does() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    vault.set("gh", "token", b"x").unwrap();
    vault.get("gh").unwrap();
    assert!(vault.list().unwrap()[0].last_used.is_none());
    vault.mark_used("gh", "deploy-bot").unwrap();
    assert!(vault.list().unwrap()[0].last_used.is_some());
}

#[test]
fn remove_deletes_and_recreated_name_continues_its_versions() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    vault.set("gh", "token", b"one").unwrap();
    let old_record = common::raw_record(&db, "gh");
    vault.remove("gh").unwrap();
    assert!(matches!(vault.get("gh"), Err(VaultError::NotFound(_))));
    assert!(vault.list().unwrap().is_empty());
    assert!(matches!(vault.remove("gh"), Err(VaultError::NotFound(_))));
    assert_eq!(vault.set("gh", "token", b"two").unwrap(), 2);
    // Putting the removed version-1 record back is detected, not served.
    common::tamper(&db, "gh", |raw| *raw = old_record);
    assert!(matches!(
        vault.get("gh"),
        Err(VaultError::RecordVersionMismatch {
            found: 1,
            expected: 2,
            ..
        })
    ));
}

#[test]
fn unknown_names_are_not_found() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    assert!(matches!(vault.get("nope"), Err(VaultError::NotFound(_))));
    assert!(matches!(
        vault.mark_used("nope", "bot"),
        Err(VaultError::NotFound(_))
    ));
}

#[test]
fn invalid_names_are_rejected_naming_the_field() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    let e = vault
        .set("bad name", "token", b"x")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("invalid name \"bad name\""), "{e}");
    let e = vault.set("ok", "", b"x").unwrap_err().to_string();
    assert!(e.starts_with("invalid kind"), "{e}");
    let e = vault.mark_used("ok", "../agent").unwrap_err().to_string();
    assert!(e.starts_with("invalid agent"), "{e}");
    let e = vault.get(&"a".repeat(129)).unwrap_err().to_string();
    assert!(e.starts_with("invalid name"), "{e}");
}

#[test]
fn vault_tables_coexist_with_other_tables_in_the_shared_database() {
    let f = Fixture::new();
    let (db, vault) = f.vault();
    let audit: redb::TableDefinition<u64, &str> = redb::TableDefinition::new("audit_log");
    let txn = db.begin_write().unwrap();
    txn.open_table(audit).unwrap().insert(1, "entry").unwrap();
    txn.commit().unwrap();
    vault.set("gh", "token", b"x").unwrap();
    let txn = db.begin_write().unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    for n in &names {
        assert!(n == "audit_log" || n.starts_with("vault_"), "{n}");
    }
    assert_eq!(vault.get("gh").unwrap().expose(), b"x");
}
