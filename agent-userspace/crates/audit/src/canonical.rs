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
    let mut keys: Vec<&String> = record
        .iter()
        .filter(|(k, v)| k.as_str() != "hash" && !is_absent(v))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, &mut out);
        out.push(b':');
        if let Some(v) = record.get(key) {
            write_value(v, &mut out);
        }
    }
    out.push(b'}');
    out
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
        Value::Object(map) => write_object(map, out),
    }
}

/// An object with its keys sorted, values written canonically.
pub(crate) fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
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

pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    // Most of what a record holds needs no escape (names, actions, hosts): copied as is, which
    // is byte for byte what serde_json writes for it and the writer thread's hottest spot
    // otherwise. JSON escapes only control characters, `"` and `\`.
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // serde_json's string escaping is deterministic; writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Whether `s` holds nothing JSON escapes: no control character, `"` or `\`. Looked at 16
/// bytes at a time with no exit inside a block, which the compiler makes vector compares; a
/// search stopping at the first such byte goes one byte at a time, and that was half of
/// `write_string`'s time in the daemon's profile (every record's strings pass here).
fn plain(s: &[u8]) -> bool {
    let escaped = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let (blocks, rest) = s.as_chunks::<16>();
    for block in blocks {
        if block.iter().fold(false, |any, &b| any | escaped(b)) {
            return false;
        }
    }
    !rest.iter().any(|&b| escaped(b))
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
    fn a_byte_json_escapes_is_found_at_every_place_in_a_block_and_the_tail() {
        let base = "a".repeat(37);
        assert!(plain(base.as_bytes()));
        for at in 0..base.len() {
            for bad in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut s = base.clone().into_bytes();
                s[at] = bad;
                assert!(!plain(&s), "byte {bad:#x} at {at}");
            }
        }
        // Bytes past ASCII (UTF-8) and DEL need no escape.
        assert!(plain(
            "caf\u{e9} \u{1f600} \u{7f} and some more to fill a block".as_bytes()
        ));
    }

    #[test]
    fn strings_are_written_exactly_as_serde_json_writes_them() {
        let cases = [
            "",
            "deploy-bot",
            "github.branch.delete",
            "/repos/acme/site?x=1&y=\u{e9}",
            "caf\u{e9} \u{1f600} \u{7f}",
            "quote \" inside",
            "back\\slash",
            "tab\tnew\nline\r\u{0}\u{1f}",
        ];
        for s in cases {
            let mut ours = vec![];
            write_string(s, &mut ours);
            let theirs = serde_json::to_vec(s).expect("serialize a str");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{s:?}"
            );
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
    fn any_value_change_changes_the_hash() {
        let a = obj(json!({"seq": 1, "decision": "deny"}));
        let b = obj(json!({"seq": 1, "decision": "allow"}));
        assert_ne!(record_hash(&a), record_hash(&b));
    }
}
