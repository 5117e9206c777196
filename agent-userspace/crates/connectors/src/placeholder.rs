//! Recognising what an agent put where a credential goes: Cordon's own placeholder
//! (`cordon-placeholder-<connector>`), a real-looking key Cordon did not issue, or neither.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Every placeholder starts with this; the connector name follows.
pub const PLACEHOLDER_PREFIX: &str = "cordon-placeholder-";

/// Well-known prefixes of real API keys and tokens.
const KNOWN_KEY_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "sk-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxe-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
];

/// Length from which an opaque bearer value is taken to be a real credential.
const MIN_OPAQUE_TOKEN_LEN: usize = 20;

/// The placeholder value `cordon run` puts into a connector's `placeholder_env` variables.
pub fn placeholder_value(connector: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{connector}")
}

/// The connector whose placeholder this header (or query) value carries, if any. Understands
/// raw values, `Bearer <v>`, `token <v>` and `Basic <base64(user:pass)>` (either half).
pub fn placeholder_connector(value: &str) -> Option<String> {
    let (_, tokens) = tokens(value);
    tokens.iter().find_map(|t| {
        t.strip_prefix(PLACEHOLDER_PREFIX)
            .filter(|name| crate::connector::is_connector_name(name))
            .map(String::from)
    })
}

/// Whether a value found where credentials go (the `Authorization` header, a connector's
/// credential header or query param) looks like a real credential that Cordon did not issue.
/// Not meant for arbitrary headers: any long opaque value counts.
pub fn looks_like_foreign_credential(value: &str) -> bool {
    let (_, tokens) = tokens(value);
    tokens.iter().any(|t| {
        !t.starts_with(PLACEHOLDER_PREFIX)
            && (KNOWN_KEY_PREFIXES.iter().any(|p| t.starts_with(p))
                || (t.len() >= MIN_OPAQUE_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic())))
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Wrapping {
    Raw,
    Bearer,
    Basic,
}

/// The credential strings inside a value. Zeroized on drop: they may be real secrets.
fn tokens(value: &str) -> (Wrapping, Vec<Zeroizing<String>>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        return (Wrapping::Bearer, vec![Zeroizing::new(rest.to_string())]);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(STANDARD.decode(rest).unwrap_or_default());
        let text = Zeroizing::new(String::from_utf8_lossy(&decoded).into_owned());
        let parts = match text.split_once(':') {
            Some((user, pass)) => vec![
                Zeroizing::new(user.to_string()),
                Zeroizing::new(pass.to_string()),
            ],
            None => vec![Zeroizing::new(text.to_string())],
        };
        return (Wrapping::Basic, parts);
    }
    (Wrapping::Raw, vec![Zeroizing::new(value.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_is_found_in_every_wrapping() {
        assert_eq!(
            placeholder_connector("cordon-placeholder-openai").as_deref(),
            Some("openai")
        );
        assert_eq!(
            placeholder_connector("Bearer cordon-placeholder-github").as_deref(),
            Some("github")
        );
        let basic = STANDARD.encode("x-access-token:cordon-placeholder-github");
        assert_eq!(
            placeholder_connector(&format!("Basic {basic}")).as_deref(),
            Some("github")
        );
        assert_eq!(placeholder_connector("Bearer something-else"), None);
    }

    #[test]
    fn real_keys_are_foreign_and_placeholders_are_not() {
        for v in [
            "Bearer ghp_abc",
            "token github_pat_11ABC",
            "Bearer sk_live_123",
            "sk-ant-api03-xyz",
            "Bearer xoxb-1-2-3",
            "Bearer abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(looks_like_foreign_credential(v), "{v}");
        }
        let basic = STANDARD.encode("x-access-token:ghs_0123456789");
        assert!(looks_like_foreign_credential(&format!("Basic {basic}")));
        for v in ["Bearer cordon-placeholder-stripe", "Bearer short", ""] {
            assert!(!looks_like_foreign_credential(v), "{v}");
        }
    }
}
