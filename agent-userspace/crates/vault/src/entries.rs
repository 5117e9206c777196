//! Structured entry kinds: values Cordon uses to mint short-lived
//! credentials rather than inject as they are.
//!
//! A structured entry is stored like any secret (one sealed record, its
//! kind in the authenticated header) with a JSON value. [`Vault::set`]
//! checks the value of a structured kind before sealing it, so a malformed
//! entry is refused when it is added, not when an agent first needs it.
//!
//! [`Vault::set`]: crate::Vault::set

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Result, VaultError};
use crate::secret::Secret;

/// A GitHub App that mints installation tokens.
pub const KIND_GITHUB_APP: &str = "github-app";
/// Base AWS credentials that assume a role for short sessions.
pub const KIND_AWS_ROLE: &str = "aws-role";

/// AssumeRole's bounds for a session, in seconds (15 to 60 minutes).
pub const AWS_SESSION_MIN_SECS: u32 = 15 * 60;
pub const AWS_SESSION_MAX_SECS: u32 = 60 * 60;

/// `github-app`: the app's id, its private key (PEM, PKCS#1 as GitHub
/// issues it, or PKCS#8) and the installation the tokens are for.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GithubAppEntry {
    pub app_id: u64,
    pub installation_id: u64,
    pub private_key_pem: String,
}

/// `aws-role`: the base credentials that may call `sts:AssumeRole`, the
/// role, how long a session lasts and an optional session policy (a JSON
/// IAM policy that narrows the role further).
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsRoleEntry {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
    pub session_duration_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// Region whose STS endpoint signs the AssumeRole call; `us-east-1`
    /// (the global endpoint) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_region: Option<String>,
}

impl std::fmt::Debug for GithubAppEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubAppEntry")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for AwsRoleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsRoleEntry")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("role_arn", &self.role_arn)
            .field("session_duration_secs", &self.session_duration_secs)
            .field("session_policy", &self.session_policy.is_some())
            .field("sts_region", &self.sts_region)
            .finish()
    }
}

impl GithubAppEntry {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.app_id == 0 {
            return Err("`app_id` must be the app's numeric id (not 0)".into());
        }
        if self.installation_id == 0 {
            return Err("`installation_id` must be the installation's numeric id (not 0)".into());
        }
        let pem = self.private_key_pem.trim();
        let labelled = ["RSA PRIVATE KEY", "PRIVATE KEY"].iter().any(|label| {
            pem.starts_with(&format!("-----BEGIN {label}-----"))
                && pem.ends_with(&format!("-----END {label}-----"))
        });
        if !labelled {
            return Err(
                "`private_key_pem` must be the app's PEM private key (-----BEGIN RSA PRIVATE KEY----- ...)"
                    .into(),
            );
        }
        Ok(())
    }
}

impl AwsRoleEntry {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let key_id_ok = (16..=128).contains(&self.access_key_id.len())
            && self
                .access_key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric());
        if !key_id_ok {
            return Err("`access_key_id` must be 16-128 letters and digits (AKIA...)".into());
        }
        if self.secret_access_key.is_empty() || self.secret_access_key.chars().any(char::is_control)
        {
            return Err("`secret_access_key` must be non-empty printable text".into());
        }
        let arn = &self.role_arn;
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let arn_ok = parts.len() == 6
            && parts[0] == "arn"
            && !parts[1].is_empty()
            && parts[2] == "iam"
            && parts[5].starts_with("role/")
            && parts[5].len() > "role/".len();
        if !arn_ok {
            return Err(format!(
                "`role_arn` {arn:?} is not a role ARN (arn:aws:iam::123456789012:role/NAME)"
            ));
        }
        if !(AWS_SESSION_MIN_SECS..=AWS_SESSION_MAX_SECS).contains(&self.session_duration_secs) {
            return Err(format!(
                "`session_duration_secs` is {}; sessions last 900 to 3600 seconds (15 to 60 minutes)",
                self.session_duration_secs
            ));
        }
        if let Some(policy) = &self.session_policy
            && serde_json::from_str::<serde_json::Value>(policy)
                .map(|v| !v.is_object())
                .unwrap_or(true)
        {
            return Err("`session_policy` must be a JSON IAM policy document (an object)".into());
        }
        if let Some(region) = &self.sts_region
            && (region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(format!("`sts_region` {region:?} is not a region name"));
        }
        Ok(())
    }
}

/// Checks the value of a structured kind; other kinds are opaque bytes.
pub(crate) fn check_value(name: &str, kind: &str, value: &[u8]) -> Result<()> {
    let checked = match kind {
        KIND_GITHUB_APP => parse::<GithubAppEntry>(value).and_then(|e| e.validate()),
        KIND_AWS_ROLE => parse::<AwsRoleEntry>(value).and_then(|e| e.validate()),
        _ => Ok(()),
    };
    checked.map_err(|reason| VaultError::InvalidEntry {
        name: name.to_owned(),
        kind: kind.to_owned(),
        reason,
    })
}

fn parse<T: for<'de> Deserialize<'de>>(value: &[u8]) -> std::result::Result<T, String> {
    // serde_json's message names the field and position, never the value.
    serde_json::from_slice(value).map_err(|e| e.to_string())
}

/// Reads a structured entry out of a decrypted secret of the right kind.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    name: &str,
    kind: &str,
    expected: &'static str,
    secret: &Secret,
) -> Result<T> {
    if kind != expected {
        return Err(VaultError::WrongKind {
            name: name.to_owned(),
            found: kind.to_owned(),
            expected,
        });
    }
    parse(secret.expose()).map_err(|reason| VaultError::InvalidEntry {
        name: name.to_owned(),
        kind: kind.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";

    fn role() -> AwsRoleEntry {
        AwsRoleEntry {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            role_arn: "arn:aws:iam::123456789012:role/agent".into(),
            session_duration_secs: 900,
            session_policy: None,
            sts_region: None,
        }
    }

    #[test]
    fn well_formed_entries_pass() {
        let app = GithubAppEntry {
            app_id: 1,
            installation_id: 2,
            private_key_pem: PEM.into(),
        };
        check_value("gh", KIND_GITHUB_APP, &serde_json::to_vec(&app).unwrap()).unwrap();
        check_value("aws", KIND_AWS_ROLE, &serde_json::to_vec(&role()).unwrap()).unwrap();
    }

    #[test]
    fn session_duration_outside_15_to_60_minutes_is_refused() {
        for secs in [899, 3601] {
            let mut r = role();
            r.session_duration_secs = secs;
            let err = check_value("aws", KIND_AWS_ROLE, &serde_json::to_vec(&r).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains("900 to 3600"), "{err}");
        }
    }

    #[test]
    fn malformed_values_name_the_entry_and_field_never_the_secret() {
        let err = check_value(
            "gh",
            KIND_GITHUB_APP,
            br#"{"app_id":1,"installation_id":2,"private_key_pem":"hunter2"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"gh\"") && err.contains("private_key_pem"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = check_value("gh", KIND_GITHUB_APP, br#"{"app_id":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("installation_id"), "{err}");
        let mut r = role();
        r.role_arn = "arn:aws:iam::1:user/x".into();
        let err = check_value("aws", KIND_AWS_ROLE, &serde_json::to_vec(&r).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("role_arn"), "{err}");
        r = role();
        r.session_policy = Some("not json".into());
        assert!(check_value("aws", KIND_AWS_ROLE, &serde_json::to_vec(&r).unwrap()).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let shown = format!("{:?}", role());
        assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
    }

    #[test]
    fn other_kinds_stay_opaque() {
        check_value("tok", "token", b"anything at all").unwrap();
    }
}
