//! Validation for the identifiers the vault stores: secret names and agent names.

use crate::error::{Result, VaultError};

const MAX_LEN: usize = 128;

/// Checks `value` against `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`; `field` names the argument in the
/// error so the caller can tell which input was rejected.
pub fn validate(field: &'static str, value: &str) -> Result<()> {
    let invalid = |reason| {
        Err(VaultError::InvalidName {
            field,
            value: value.chars().take(MAX_LEN + 8).collect(),
            reason,
        })
    };
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return invalid("must not be empty");
    };
    if bytes.len() > MAX_LEN {
        return invalid("must be at most 128 characters");
    }
    if !first.is_ascii_alphanumeric() {
        return invalid("must start with a letter or digit");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("may contain only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Secret kinds are free text for humans ("token", "api-key"), but still bounded and printable
/// so they cannot smuggle control characters into logs or CLI output.
pub fn validate_kind(kind: &str) -> Result<()> {
    let invalid = |reason| {
        Err(VaultError::InvalidName {
            field: "kind",
            value: kind.chars().take(72).collect(),
            reason,
        })
    };
    if kind.is_empty() {
        return invalid("must not be empty");
    }
    if kind.len() > 64 {
        return invalid("must be at most 64 bytes");
    }
    if kind.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_names() {
        for ok in ["deploy-bot-github", "a", "Stripe.live_key-2", "0abc"] {
            validate("name", ok).unwrap();
        }
        validate("name", &"x".repeat(128)).unwrap();
    }

    #[test]
    fn rejects_bad_names_naming_the_field() {
        for bad in ["", "-lead", ".hidden", "has space", "slash/x", "ünï", "a\n"] {
            let err = validate("name", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid name"), "{bad:?}: {err}");
        }
        let err = validate("agent", &"x".repeat(129)).unwrap_err().to_string();
        assert!(err.starts_with("invalid agent"), "{err}");
    }

    #[test]
    fn kind_rejects_control_characters_and_empty() {
        validate_kind("api-key").unwrap();
        assert!(validate_kind("").is_err());
        assert!(validate_kind("tok\x1b[31m").is_err());
        assert!(validate_kind(&"k".repeat(65)).is_err());
    }
}
