mod common;

use common::Fixture;
use cordon_vault::{AwsRoleEntry, GithubAppEntry, KIND_AWS_ROLE, KIND_GITHUB_APP, VaultError};

const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";

fn app() -> GithubAppEntry {
    GithubAppEntry {
        app_id: 42,
        installation_id: 7,
        private_key_pem: PEM.into(),
    }
}

#[test]
fn github_app_entry_round_trips_through_the_vault() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    vault
        .set(
            "gh-app",
            KIND_GITHUB_APP,
            &serde_json::to_vec(&app()).unwrap(),
        )
        .unwrap();
    assert_eq!(vault.github_app("gh-app").unwrap(), app());
    let listed = vault.list().unwrap();
    assert_eq!(listed[0].kind, "github-app");
}

#[test]
fn a_malformed_structured_entry_is_refused_before_it_is_stored() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    let err = vault
        .set("gh-app", KIND_GITHUB_APP, br#"{"app_id": 42}"#)
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidEntry { .. }), "{err}");
    assert!(matches!(vault.get("gh-app"), Err(VaultError::NotFound(_))));
}

#[test]
fn reading_an_entry_as_another_kind_is_an_error() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    vault
        .set(
            "gh-app",
            KIND_GITHUB_APP,
            &serde_json::to_vec(&app()).unwrap(),
        )
        .unwrap();
    vault.set("plain", "token", b"ghp_x").unwrap();
    assert!(matches!(
        vault.aws_role("gh-app"),
        Err(VaultError::WrongKind {
            expected: KIND_AWS_ROLE,
            ..
        })
    ));
    assert!(matches!(
        vault.github_app("plain"),
        Err(VaultError::WrongKind { .. })
    ));
    let role = AwsRoleEntry {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "secret".into(),
        role_arn: "arn:aws:iam::123456789012:role/agent".into(),
        session_duration_secs: 3600,
        session_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        sts_region: Some("eu-west-1".into()),
    };
    vault
        .set("aws", KIND_AWS_ROLE, &serde_json::to_vec(&role).unwrap())
        .unwrap();
    assert_eq!(vault.aws_role("aws").unwrap(), role);
}
