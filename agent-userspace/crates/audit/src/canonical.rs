//! The canonical byte form a record's hash covers, and the chain hash itself.
//!
//! Canonical form: the record as a JSON object with the `hash` key and every top-level `null`
//! or empty object removed (the stored form never has them; exports add them for readers), object keys sorted by byte order at every depth, no whitespace, strings and numbers
//! written as serde_json writes them. Hashing the JSON value (not the Rust struct) keeps old
//! records verifiable by newer code that knows more fields, and lets anyone re-check an exported
//! JSONL line: drop `hash`, drop top-level nulls, canonicalize, SHA-256.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of record 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 over the canonical form of `record` (a JSON object).
pub fn record_hash(record: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(canonical_bytes(record));
    hex::encode(hasher.finalize())
}

/// The bytes `record_hash` digests.
pub fn canonical_bytes(record: &Map<String, Value>) -> Vec<u8> {
    canonical_split(record).0
}

/// The stored form of a record that has no `hash` key yet: its canonical bytes with
/// `"hash":"<hex>"` spliced in where sorted order puts it, and the hash. One canonical pass
/// instead of hashing and then writing the whole record again.
pub(crate) fn stored_with_hash(record: &Map<String, Value>) -> (Vec<u8>, String) {
    let (canonical, at) = canonical_split(record);
    let hash = hex::encode(Sha256::digest(&canonical));
    let mut out = Vec::with_capacity(canonical.len() + 80);
    out.extend_from_slice(&canonical[..at]);
    let entry = format!("\"hash\":\"{hash}\"");
    if at + 1 == canonical.len() {
        // No key sorts after "hash": append before the closing brace.
        if at > 1 {
            out.push(b',');
        }
        out.extend_from_slice(entry.as_bytes());
    } else {
        out.extend_from_slice(entry.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(&canonical[at..]);
    (out, hash)
}

/// Canonical bytes and the offset where a `hash` key would start in sorted order (before the
/// first greater key, or at the closing brace).
fn canonical_split(record: &Map<String, Value>) -> (Vec<u8>, usize) {
    let mut keys: Vec<&String> = record
        .iter()
        .filter(|(k, v)| k.as_str() != "hash" && !is_absent(v))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(512);
    let mut split = None;
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if split.is_none() && key.as_str() > "hash" {
            split = Some(out.len());
        }
        write_string(key, &mut out);
        out.push(b':');
        if let Some(v) = record.get(key) {
            write_value(v, &mut out);
        }
    }
    let at = split.unwrap_or(out.len());
    out.push(b'}');
    (out, at)
}

/// Top-level values that count as "field not set".
fn is_absent(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(Map::is_empty)
}

/// Writes `value` canonically (sorted keys, compact). Used for stored bytes too, so that what
/// is on disk is already canonical plus the `hash` key.
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is deterministic; writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a = obj(json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 1}], "x": "s"}}));
        let b = obj(json!({"a": {"x": "s", "y": [1, {"p": 1, "q": 2}]}, "b": 1}));
        assert_eq!(record_hash(&a), record_hash(&b));
        assert_eq!(
            String::from_utf8_lossy(&canonical_bytes(&a)),
            r#"{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}"#
        );
    }

    #[test]
    fn hash_key_and_unset_top_level_fields_are_excluded() {
        let a = obj(json!({"seq": 1, "agent": "bot"}));
        let b = obj(json!({"seq": 1, "agent": "bot", "hash": "ff", "rule": null, "params": {}}));
        assert_eq!(record_hash(&a), record_hash(&b));
    }

    #[test]
    fn the_spliced_stored_form_is_the_canonical_form_with_its_hash() {
        for v in [
            json!({"seq": 1, "kind": "request", "agent": "bot", "params": {"b": 2, "a": [1]}}),
            json!({"agent": "bot", "exe": "/bin/x"}),
            json!({"zeta": 1}),
        ] {
            let mut map = obj(v);
            let (stored, hash) = stored_with_hash(&map);
            assert_eq!(hash, record_hash(&map));
            map.insert("hash".into(), Value::String(hash));
            let mut written = vec![];
            write_value(&Value::Object(map), &mut written);
            assert_eq!(
                String::from_utf8_lossy(&stored),
                String::from_utf8_lossy(&written)
            );
        }
    }

    #[test]
    fn any_value_change_changes_the_hash() {
        let a = obj(json!({"seq": 1, "decision": "deny"}));
        let b = obj(json!({"seq": 1, "decision": "allow"}));
        assert_ne!(record_hash(&a), record_hash(&b));
    }
}
