//! The vault view, as a pure function of the vault's listing and the policy
//! in force: every entry (name, kind, version, use; the listing decrypts
//! nothing) and every binding of every agent — plain ones, per-action ones
//! with their CEL `when`, and the scope a `github-app` token is minted with
//! (repositories, permissions). What an `aws-role` entry assumes (its role
//! ARN, its session policy) is inside the sealed value and stays there.
use std::collections::BTreeMap;

use cordon_policy::PolicySet;
use cordon_vault::SecretInfo;
use serde_json::{Value, json};

/// What the view shows of an entry: no field of the listing carries a
/// value, and this picks the ones it shows by name.
fn entry(e: &SecretInfo) -> Value {
    json!({
        "name": e.name,
        "kind": e.kind,
        "version": e.version,
        "updated": e.updated,
        "last_used": e.last_used,
        "used_by": e.used_by,
        "problem": e.problem,
    })
}

/// One row per binding, in each connector's file order (the first whose
/// `when` holds is the one a request uses).
fn bindings(entries: &[SecretInfo], set: &PolicySet) -> Vec<Value> {
    let kinds: BTreeMap<&str, &str> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind.as_str()))
        .collect();
    let mut rows = Vec::new();
    for agent in set.agents() {
        for (connector, list) in set.bindings_for(agent) {
            for (order, b) in list.iter().enumerate() {
                rows.push(json!({
                    "agent": agent,
                    "connector": connector,
                    "order": order + 1,
                    "entry": b.entry,
                    // The bound entry's kind, or null when the vault has no
                    // such entry (then the binding injects nothing).
                    "kind": kinds.get(b.entry.as_str()),
                    "when": b.when_source,
                    "repositories": b.repositories,
                    "permissions": b.permissions,
                    "location": b.location,
                }));
            }
        }
    }
    rows
}

pub fn view(entries: &[SecretInfo], set: Option<&PolicySet>) -> Value {
    json!({
        "entries": entries.iter().map(entry).collect::<Vec<_>>(),
        "bindings": set.map(|s| bindings(entries, s)).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const PLAIN_SECRET: &str = "ghp_MARKERplainSecretValue0123456789";
    const APP_KEY_LINE: &str = "MARKERappPrivateKeyLine0123456789";
    const AWS_SECRET: &str = "MARKERawsSecretAccessKey0123456789abcd";
    const AWS_KEY_ID: &str = "AKIAMARKERKEYID12345";
    const ROLE: &str = "arn:aws:iam::123456789012:role/MARKERrole";

    const POLICY: &str = r#"
agents = ["bot"]
default = "deny"

[credentials]
stripe = "stripe-key"
aws = "research-aws"

[[credentials.github]]
entry = "gh-app"
when = 'action == "github.pr.merge"'
repositories = ["acme/api"]
permissions = { contents = "write", pull_requests = "write" }

[[credentials.github]]
entry = "gh-token"
"#;

    fn vault(dir: &std::path::Path) -> cordon_vault::Vault {
        let db = Arc::new(redb::Database::create(dir.join("v.redb")).unwrap());
        let v =
            cordon_vault::Vault::open(db, cordon_vault::MasterKey::generate().unwrap()).unwrap();
        v.set("gh-token", "token", PLAIN_SECRET.as_bytes()).unwrap();
        v.set("stripe-key", "api-key", b"sk_test_MARKERstripe")
            .unwrap();
        let app = json!({
            "app_id": 12,
            "installation_id": 34,
            "private_key_pem": format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{APP_KEY_LINE}\n-----END RSA PRIVATE KEY-----"
            ),
        });
        v.set("gh-app", "github-app", app.to_string().as_bytes())
            .unwrap();
        let role = json!({
            "access_key_id": AWS_KEY_ID,
            "secret_access_key": AWS_SECRET,
            "role_arn": ROLE,
            "session_duration_secs": 900,
        });
        v.set("research-aws", "aws-role", role.to_string().as_bytes())
            .unwrap();
        v
    }

    #[test]
    fn every_binding_is_listed_with_its_kind_and_scope_and_no_value_appears() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::write(policies.join("bot.toml"), POLICY).unwrap();
        let set = PolicySet::load_dir(&policies).unwrap();

        let shown = view(&v.list().unwrap(), Some(&set));
        let text = shown.to_string();
        for secret in [
            PLAIN_SECRET,
            APP_KEY_LINE,
            AWS_SECRET,
            AWS_KEY_ID,
            "MARKERrole",
            "MARKERstripe",
            "PRIVATE KEY",
        ] {
            assert!(!text.contains(secret), "{secret} in the view: {text}");
        }

        let kinds: Vec<(&str, &str)> = shown["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("gh-app", "github-app"),
                ("gh-token", "token"),
                ("research-aws", "aws-role"),
                ("stripe-key", "api-key"),
            ]
        );
        let rows = shown["bindings"].as_array().unwrap();
        let row = |connector: &str, order: u64| {
            rows.iter()
                .find(|r| r["connector"] == connector && r["order"] == order)
                .unwrap_or_else(|| panic!("no {connector} #{order} in {rows:?}"))
        };
        let app = row("github", 1);
        assert_eq!(app["entry"], "gh-app");
        assert_eq!(app["kind"], "github-app");
        assert_eq!(app["when"], "action == \"github.pr.merge\"");
        assert_eq!(app["repositories"], json!(["acme/api"]));
        assert_eq!(app["permissions"]["contents"], "write");
        assert!(app["location"].as_str().unwrap().contains("bot.toml"));
        let fallback = row("github", 2);
        assert_eq!(
            (fallback["entry"].as_str(), fallback["when"].is_null()),
            (Some("gh-token"), true)
        );
        assert_eq!(row("aws", 1)["kind"], "aws-role");
        assert_eq!(row("stripe", 1)["kind"], "api-key");
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(rows.iter().all(|r| r["agent"] == "bot"));
    }

    #[test]
    fn a_binding_to_a_missing_entry_shows_no_kind_and_no_policy_shows_no_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::write(policies.join("bot.toml"), POLICY).unwrap();
        let set = PolicySet::load_dir(&policies).unwrap();
        let shown = view(&[], Some(&set));
        assert!(
            shown["bindings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["kind"].is_null())
        );
        assert_eq!(view(&[], None)["bindings"], json!([]));
    }
}
