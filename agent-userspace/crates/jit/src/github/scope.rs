//! What an installation token may do: the repositories and permissions a
//! credential binding names. Tokens are cached per instance and scope.

use std::collections::BTreeMap;

use cordon_policy::Binding;
use serde_json::{Value, json};

/// One token's scope, keyed by the vault entry it is minted from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenScope {
    pub entry: String,
    /// Repository names (sorted); empty means all the installation's.
    pub repositories: Vec<String>,
    /// Permission -> `read`/`write`/`admin`; empty means the app's own.
    pub permissions: BTreeMap<String, String>,
}

impl TokenScope {
    pub fn new(
        entry: &str,
        repositories: &[String],
        permissions: &BTreeMap<String, String>,
    ) -> TokenScope {
        let mut repositories: Vec<String> = repositories.to_vec();
        repositories.sort();
        repositories.dedup();
        TokenScope {
            entry: entry.to_string(),
            repositories,
            permissions: permissions.clone(),
        }
    }

    /// The scope a policy binding names.
    pub fn from_binding(binding: &Binding) -> TokenScope {
        TokenScope::new(&binding.entry, &binding.repositories, &binding.permissions)
    }

    /// The body of `POST /app/installations/{id}/access_tokens`. GitHub
    /// takes repository names without the owner (the installation's
    /// account is the owner), so `acme/api` is sent as `api`.
    pub(crate) fn request_body(&self) -> Value {
        let mut body = serde_json::Map::new();
        if !self.repositories.is_empty() {
            let names: Vec<&str> = self
                .repositories
                .iter()
                .map(|r| r.rsplit('/').next().unwrap_or(r))
                .collect();
            body.insert("repositories".into(), json!(names));
        }
        if !self.permissions.is_empty() {
            body.insert("permissions".into(), json!(self.permissions));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_names_repositories_without_owner_and_permissions() {
        let perms = BTreeMap::from([("contents".to_string(), "read".to_string())]);
        let s = TokenScope::new(
            "gh",
            &["acme/web".into(), "acme/api".into(), "acme/api".into()],
            &perms,
        );
        assert_eq!(
            s.request_body(),
            json!({"repositories": ["api", "web"], "permissions": {"contents": "read"}})
        );
        assert_eq!(
            TokenScope::new("gh", &[], &BTreeMap::new()).request_body(),
            json!({})
        );
    }
}
