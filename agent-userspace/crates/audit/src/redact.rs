//! Last-line secret scrubbing. The proxy knows which credentials it injected; before a record
//! is submitted it passes those bytes here so a credential echoed into a parameter, header
//! value or error message never reaches the (long-lived, exported) audit trail.

use serde_json::Value;

use crate::record::NewRecord;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces every occurrence of any of `secrets` inside `value` (string values, object keys,
/// and the text of numbers). Returns how many strings/keys/numbers were changed.
///
/// A secret that is not valid UTF-8 is matched as raw bytes; if cutting it out would leave a
/// string that is no longer UTF-8, the whole string is replaced (fail closed). Empty secrets are
/// ignored.
pub fn redact_json(value: &mut Value, secrets: &[&[u8]]) -> usize {
    let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return 0;
    }
    redact_value(value, &secrets)
}

fn redact_value(value: &mut Value, secrets: &[&[u8]]) -> usize {
    match value {
        Value::String(s) => usize::from(redact_string(s, secrets)),
        Value::Number(n) => {
            let text = n.to_string();
            if contains_any(text.as_bytes(), secrets) {
                *value = Value::String(REDACTED.to_string());
                1
            } else {
                0
            }
        }
        Value::Array(items) => items.iter_mut().map(|v| redact_value(v, secrets)).sum(),
        Value::Object(map) => {
            let mut changed = 0;
            let old = std::mem::take(map);
            for (mut key, mut v) in old {
                if redact_string(&mut key, secrets) {
                    changed += 1;
                }
                changed += redact_value(&mut v, secrets);
                // Two keys that redact to the same text must not silently overwrite each other.
                while map.contains_key(&key) {
                    key.push('*');
                }
                map.insert(key, v);
            }
            changed
        }
        Value::Null | Value::Bool(_) => 0,
    }
}

/// Redacts one optional text field.
fn redact_opt(field: &mut Option<String>, secrets: &[&[u8]]) -> usize {
    field
        .as_mut()
        .map_or(0, |s| usize::from(redact_string(s, secrets)))
}

/// Returns whether `s` was changed.
pub(crate) fn redact_string(s: &mut String, secrets: &[&[u8]]) -> bool {
    if !contains_any(s.as_bytes(), secrets) {
        return false;
    }
    let mut bytes = s.as_bytes().to_vec();
    for secret in secrets {
        bytes = replace_all(&bytes, secret, REDACTED.as_bytes());
    }
    *s = String::from_utf8(bytes).unwrap_or_else(|_| REDACTED.to_string());
    true
}

fn contains_any(haystack: &[u8], secrets: &[&[u8]]) -> bool {
    secrets.iter().any(|s| find(haystack, s).is_some())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

impl NewRecord {
    /// Scrubs `secrets` from every free-text field and from `params`. Returns how many values
    /// were changed (non-zero means a secret was about to be logged: worth a warning).
    pub fn redact_secrets(&mut self, secrets: &[&[u8]]) -> usize {
        let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return 0;
        }
        let mut params = Value::Object(std::mem::take(&mut self.params));
        let mut changed = redact_value(&mut params, &secrets);
        if let Value::Object(map) = params {
            self.params = map;
        }
        for field in [
            &mut self.agent,
            &mut self.instance,
            &mut self.chain,
            &mut self.exe,
            &mut self.connector,
            &mut self.action,
            &mut self.rule,
            &mut self.reason,
            &mut self.policy_version,
            &mut self.approver,
            &mut self.src_ip,
            &mut self.dst_host,
            &mut self.dst_ip,
            &mut self.http_method,
            &mut self.http_path,
            &mut self.error,
        ] {
            changed += redact_opt(field, &secrets);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EventKind;
    use serde_json::json;

    #[test]
    fn secret_is_replaced_in_nested_values_keys_and_numbers() {
        let mut v = json!({
            "headers": {"authorization": "Bearer ghp_SECRET123", "ghp_SECRET123": 1},
            "list": ["x ghp_SECRET123 y", 5],
            "pin": 987654321,
            "ok": "nothing here"
        });
        let n = redact_json(&mut v, &[b"ghp_SECRET123", b"87654"]);
        assert_eq!(n, 4);
        let text = v.to_string();
        assert!(!text.contains("ghp_SECRET123"), "{text}");
        assert!(!text.contains("87654"), "{text}");
        assert_eq!(v["headers"]["authorization"], "Bearer [REDACTED]");
        assert_eq!(v["list"][0], "x [REDACTED] y");
        assert_eq!(v["pin"], REDACTED);
        assert_eq!(v["ok"], "nothing here");
    }

    #[test]
    fn partial_utf8_secret_replaces_whole_string() {
        // 0xA9 is the second byte of "©"; cutting it out would leave invalid UTF-8.
        let mut v = json!({"s": "a©b"});
        assert_eq!(redact_json(&mut v, &[&[0xA9]]), 1);
        assert_eq!(v["s"], REDACTED);
    }

    #[test]
    fn empty_secret_changes_nothing() {
        let mut v = json!({"s": "abc"});
        assert_eq!(redact_json(&mut v, &[b""]), 0);
        assert_eq!(v["s"], "abc");
    }

    #[test]
    fn record_redaction_covers_reason_and_params() {
        let mut r = NewRecord::new(EventKind::Request);
        r.reason = Some("upstream said: bad token tok_live_42".into());
        r.params.insert("token".into(), json!("tok_live_42"));
        assert_eq!(r.redact_secrets(&[b"tok_live_42"]), 2);
        assert_eq!(
            r.reason.as_deref(),
            Some("upstream said: bad token [REDACTED]")
        );
        assert_eq!(r.params["token"], REDACTED);
    }
}
