//! An operator's launch refuses an environment that holds a vault secret.
//! `cordon run` passes its own environment to the agent, so a secret the
//! operator exported (under a name no connector replaces with a
//! placeholder, or inside a larger value such as a database URL) would
//! start the agent holding the real credential that Cordon's vault exists
//! to keep from it. The operator gets an error naming the variable and the
//! entry; the agent does not start.
//!
//! Only launches from outside every agent are checked. An agent's own
//! environment was built by Cordon, and answering an agent's nested launch
//! would let it test guesses of a secret against the vault.
use std::collections::BTreeMap;

use cordon_vault::Secret;

/// Shorter values match too easily by chance (a short secret inside
/// `PATH`, say) to refuse a launch for.
pub const MIN_SECRET_LEN: usize = 8;

/// The first variable whose value contains one of `secrets` (by entry
/// name), skipping the variables Cordon sets itself (`overridden`).
pub fn find(
    env: &[(String, String)],
    overridden: &BTreeMap<String, String>,
    secrets: &[(String, Secret)],
) -> Option<(String, String)> {
    env.iter()
        .filter(|(name, _)| !overridden.contains_key(name))
        .find_map(|(name, value)| {
            secrets
                .iter()
                .filter(|(_, s)| s.len() >= MIN_SECRET_LEN)
                .find(|(_, s)| contains(value.as_bytes(), s.expose()))
                .map(|(entry, _)| (name.clone(), entry.clone()))
        })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every opaque entry's current value. Structured entries (`github-app`,
/// `aws-role`) are JSON that no environment holds whole.
pub fn opaque_secrets(vault: &cordon_vault::Vault) -> cordon_vault::Result<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    for info in vault.list()? {
        let (kind, secret) = vault.get_with_kind(&info.name)?;
        if kind != cordon_vault::KIND_GITHUB_APP && kind != cordon_vault::KIND_AWS_ROLE {
            out.push((info.name, secret));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<(String, Secret)> {
        vec![
            ("gh".into(), Secret::from_slice(b"ghp_0123456789abcdef")),
            ("pin".into(), Secret::from_slice(b"1234")),
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_secret_exported_whole_or_inside_a_value_is_found_by_variable_and_entry() {
        let none = BTreeMap::new();
        let whole = env(&[("HOME", "/root"), ("MY_TOKEN", "ghp_0123456789abcdef")]);
        assert_eq!(
            find(&whole, &none, &secrets()),
            Some(("MY_TOKEN".into(), "gh".into()))
        );
        let inside = env(&[("GIT_URL", "https://x:ghp_0123456789abcdef@github.com/o/r")]);
        assert_eq!(
            find(&inside, &none, &secrets()),
            Some(("GIT_URL".into(), "gh".into()))
        );
    }

    #[test]
    fn variables_cordon_sets_short_secrets_and_partial_matches_are_not_refused() {
        let placeholder = BTreeMap::from([(
            "GITHUB_TOKEN".to_string(),
            "cordon-placeholder-github".to_string(),
        )]);
        let e = env(&[
            ("GITHUB_TOKEN", "ghp_0123456789abcdef"),
            ("PATH", "/usr/bin:/opt/1234/bin"),
            ("PARTIAL", "ghp_0123456789abcde"),
        ]);
        assert_eq!(find(&e, &placeholder, &secrets()), None);
    }
}
