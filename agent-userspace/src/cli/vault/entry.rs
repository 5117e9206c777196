//! Structured vault entries (`github-app`, `aws-role`) as an operator
//! writes them: a small TOML file (or the stored JSON itself) given to
//! `cordon vault set NAME --kind github-app --from-file app.toml`.
//!
//! ```toml
//! # --kind github-app
//! app_id = 123456
//! installation_id = 7890123
//! private_key_file = "/root/my-app.private-key.pem"   # or private_key = """-----BEGIN ..."""
//!
//! # --kind aws-role
//! access_key_id = "AKIA..."
//! secret_access_key = "..."
//! role_arn = "arn:aws:iam::123456789012:role/agent"
//! session_duration_secs = 900                          # 900 to 3600
//! session_policy_file = "/root/agent-session-policy.json"   # optional, or session_policy = '{...}'
//! sts_region = "eu-west-1"                             # optional
//! ```
//!
//! The vault checks the result again before sealing it, so the daemon
//! refuses a malformed entry however it arrives.
use std::path::PathBuf;

use anyhow::{Context, bail};
use cordon_vault::{AwsRoleEntry, GithubAppEntry, KIND_AWS_ROLE, KIND_GITHUB_APP};
use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GithubAppFile {
    app_id: u64,
    installation_id: u64,
    private_key: Option<String>,
    private_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsRoleFile {
    access_key_id: String,
    secret_access_key: String,
    role_arn: String,
    session_duration_secs: u32,
    session_policy: Option<String>,
    session_policy_file: Option<PathBuf>,
    sts_region: Option<String>,
}

/// The value to store for `kind`: unchanged for opaque kinds, the entry's
/// JSON for structured ones.
pub fn structured_value(kind: &str, raw: Zeroizing<Vec<u8>>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if kind != KIND_GITHUB_APP && kind != KIND_AWS_ROLE {
        return Ok(raw);
    }
    if raw.first() == Some(&b'{') {
        // Already the stored form; the vault checks it.
        return Ok(raw);
    }
    let text = std::str::from_utf8(&raw).context("the entry file is not UTF-8")?;
    let json = match kind {
        KIND_GITHUB_APP => {
            let file: GithubAppFile = toml::from_str(text).map_err(|e| entry_error(kind, &e))?;
            let pem = one_of(file.private_key, file.private_key_file, "private_key")?
                .context("a github-app entry needs `private_key` or `private_key_file`")?;
            let entry = GithubAppEntry {
                app_id: file.app_id,
                installation_id: file.installation_id,
                private_key_pem: pem.to_string(),
            };
            serde_json::to_vec(&entry)?
        }
        _ => {
            let file: AwsRoleFile = toml::from_str(text).map_err(|e| entry_error(kind, &e))?;
            let policy = one_of(
                file.session_policy,
                file.session_policy_file,
                "session_policy",
            )?;
            let entry = AwsRoleEntry {
                access_key_id: file.access_key_id,
                secret_access_key: file.secret_access_key,
                role_arn: file.role_arn,
                session_duration_secs: file.session_duration_secs,
                session_policy: policy.map(|p| p.to_string()),
                sts_region: file.sts_region,
            };
            serde_json::to_vec(&entry)?
        }
    };
    Ok(Zeroizing::new(json))
}

/// toml's message names the line and field; it never quotes a value.
fn entry_error(kind: &str, e: &toml::de::Error) -> anyhow::Error {
    anyhow::anyhow!("{kind} entry: {}", e.message()).context(match e.span() {
        Some(span) => format!("the {kind} entry file, at byte {}", span.start),
        None => format!("the {kind} entry file"),
    })
}

fn one_of(
    inline: Option<String>,
    file: Option<PathBuf>,
    field: &str,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    match (inline, file) {
        (Some(_), Some(_)) => bail!("give `{field}` or `{field}_file`, not both"),
        (Some(v), None) => Ok(Some(Zeroizing::new(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading `{field}_file` {}", path.display()))?;
            Ok(Some(Zeroizing::new(text)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_app_file_becomes_the_stored_json() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("app.pem");
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        std::fs::write(&key, pem).unwrap();
        let toml = format!(
            "app_id = 12\ninstallation_id = 34\nprivate_key_file = {:?}\n",
            key.display().to_string()
        );
        let out = structured_value(KIND_GITHUB_APP, Zeroizing::new(toml.into_bytes())).unwrap();
        let entry: GithubAppEntry = serde_json::from_slice(&out).unwrap();
        assert_eq!((entry.app_id, entry.installation_id), (12, 34));
        assert_eq!(entry.private_key_pem, pem);
        assert!(entry.validate().is_ok());
    }

    #[test]
    fn aws_role_file_with_a_typo_names_the_field() {
        let toml = "access_key_id = \"AKIAX\"\nsecret_access_key = \"s\"\nrole_arn = \"arn:aws:iam::1:role/r\"\nsession_duration = 900\n";
        let err =
            structured_value(KIND_AWS_ROLE, Zeroizing::new(toml.as_bytes().to_vec())).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("session_duration"), "{text}");
    }

    #[test]
    fn opaque_kinds_pass_through() {
        let out = structured_value("token", Zeroizing::new(b"ghp_x".to_vec())).unwrap();
        assert_eq!(&*out, b"ghp_x");
    }
}
