//! Writes a record's stored bytes straight from its fields, in canonical form (see
//! `canonical`), without building a `serde_json::Value` first. The audit writer encodes every
//! record on one thread; going through `Value` (a map of owned strings, then sorting and
//! writing it) was most of that thread's time under load.
//!
//! The output is byte-for-byte what `canonical` produces from the serialized record (hash, then
//! the record with its hash written canonically); the tests hold the two paths to that.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::canonical::{write_object, write_string};
use crate::encoded::Hash;
use crate::record::{NewRecord, format_ts};

/// What encoding reuses from one record to the next: the record's bytes before its hash is
/// known (the hash entry is then spliced in at its place in key order).
#[derive(Default)]
pub(crate) struct Scratch {
    body: Vec<u8>,
}

/// Every key a record can have, with room to spare: the field list lives on the stack.
const MAX_FIELDS: usize = 64;

enum Field<'a> {
    Str(&'a str),
    Ts(&'a DateTime<Utc>),
    Int(u64),
    /// A finite float (non-finite ones are left out: JSON has no text for them).
    Float(serde_json::Number),
    Bool(bool),
    Params(&'a Map<String, Value>),
}

/// Appends the stored bytes (hash included) of `rec` at `seq`, chained to `prev_hash`, to
/// `out`, and returns its hash.
pub(crate) fn stored_bytes_into(
    seq: u64,
    ts: &DateTime<Utc>,
    rec: &NewRecord,
    prev_hash: &str,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Hash {
    let mut fields: SmallVec<[(&'static str, Field<'_>); MAX_FIELDS]> = SmallVec::new();
    let strings: [(&'static str, &Option<String>); 16] = [
        ("agent", &rec.agent),
        ("instance", &rec.instance),
        ("chain", &rec.chain),
        ("exe", &rec.exe),
        ("connector", &rec.connector),
        ("action", &rec.action),
        ("rule", &rec.rule),
        ("reason", &rec.reason),
        ("policy_version", &rec.policy_version),
        ("approver", &rec.approver),
        ("src_ip", &rec.src_ip),
        ("dst_host", &rec.dst_host),
        ("dst_ip", &rec.dst_ip),
        ("http_method", &rec.http_method),
        ("http_path", &rec.http_path),
        ("error", &rec.error),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            fields.push((k, Field::Str(v)));
        }
    }
    let ints: [(&'static str, Option<u64>); 15] = [
        ("cgroup_id", rec.cgroup_id),
        ("pid", rec.pid.map(u64::from)),
        ("uid", rec.uid.map(u64::from)),
        ("upstream_status", rec.upstream_status.map(u64::from)),
        ("bytes_up", rec.bytes_up),
        ("bytes_down", rec.bytes_down),
        ("decision_latency_us", rec.decision_latency_us),
        ("total_latency_us", rec.total_latency_us),
        ("src_port", rec.src_port.map(u64::from)),
        ("dst_port", rec.dst_port.map(u64::from)),
        ("seq", Some(seq)),
        ("decision_seq", rec.decision_seq),
        ("ttfb_us", rec.ttfb_us),
        ("tokens_in", rec.tokens_in),
        ("tokens_out", rec.tokens_out),
    ];
    for (k, v) in ints {
        if let Some(v) = v {
            fields.push((k, Field::Int(v)));
        }
    }
    fields.push(("kind", Field::Str(rec.kind.as_str())));
    if let Some(d) = rec.decision {
        fields.push(("decision", Field::Str(d.as_str())));
    }
    if let Some(w) = rec.would {
        fields.push(("would", Field::Str(w.as_str())));
    }
    if let Some(o) = rec.outcome {
        fields.push(("outcome", Field::Str(o.as_str())));
    }
    if let Some(n) = rec.cost_usd.and_then(serde_json::Number::from_f64) {
        fields.push(("cost_usd", Field::Float(n)));
    }
    if let Some(b) = rec.mcp_error {
        fields.push(("mcp_error", Field::Bool(b)));
    }
    if !rec.params.is_empty() {
        fields.push(("params", Field::Params(&rec.params)));
    }
    fields.push(("ts", Field::Ts(ts)));
    fields.push(("prev_hash", Field::Str(prev_hash)));
    fields.sort_unstable_by_key(|(k, _)| *k);

    let body = &mut scratch.body;
    body.clear();
    let mut split = None;
    body.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if split.is_none() && *key > "hash" {
            split = Some(body.len());
        }
        write_string(key, body);
        body.push(b':');
        match value {
            Field::Str(v) => write_string(v, body),
            Field::Ts(ts) => write_ts(ts, body),
            Field::Int(v) => body.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Field::Float(n) => body.extend_from_slice(n.to_string().as_bytes()),
            Field::Bool(b) => body.extend_from_slice(if *b { b"true" } else { b"false" }),
            Field::Params(m) => write_object(m, body),
        }
    }
    body.push(b'}');
    let hash = Hash::of(&Sha256::digest(&body[..]));
    let at = split.unwrap_or(body.len() - 1);
    let entry = [b"\"hash\":\"".as_slice(), hash.as_str().as_bytes(), b"\""];
    out.reserve(body.len() + 64 + 10);
    out.extend_from_slice(&body[..at]);
    if at + 1 == body.len() {
        if at > 1 {
            out.push(b',');
        }
        entry.iter().for_each(|part| out.extend_from_slice(part));
    } else {
        entry.iter().for_each(|part| out.extend_from_slice(part));
        out.push(b',');
    }
    out.extend_from_slice(&body[at..]);
    hash
}

/// `ts` as `format_ts` writes it (RFC 3339, microseconds, `Z`), as a JSON string, without
/// building a `String`. Years outside 0..=9999 and leap seconds take `format_ts` itself.
fn write_ts(ts: &DateTime<Utc>, out: &mut Vec<u8>) {
    let (year, nanos) = (ts.year(), ts.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        write_string(&format_ts(ts), out);
        return;
    }
    let y = u32::try_from(year).unwrap_or(0);
    let parts: [(u32, usize, u8); 7] = [
        (y, 4, b'-'),
        (ts.month(), 2, b'-'),
        (ts.day(), 2, b'T'),
        (ts.hour(), 2, b':'),
        (ts.minute(), 2, b':'),
        (ts.second(), 2, b'.'),
        (nanos / 1_000, 6, b'Z'),
    ];
    out.push(b'"');
    for (n, width, after) in parts {
        let mut digits = [b'0'; 6];
        let mut n = n;
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&digits[..width]);
        out.push(after);
    }
    out.push(b'"');
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{record_hash, write_value};
    use crate::record::{Decision, EventKind, now_micros};
    use serde_json::json;

    /// The reference path: serialize to a `Value`, add the chain fields, canonicalize.
    fn via_value(seq: u64, ts: &DateTime<Utc>, rec: &NewRecord, prev: &str) -> (Vec<u8>, String) {
        let Ok(Value::Object(mut map)) = serde_json::to_value(rec) else {
            panic!("record is not an object");
        };
        map.insert("seq".into(), Value::from(seq));
        map.insert("ts".into(), Value::String(format_ts(ts)));
        map.insert("prev_hash".into(), Value::String(prev.to_string()));
        let hash = record_hash(&map);
        map.insert("hash".into(), Value::String(hash.clone()));
        let mut bytes = vec![];
        write_value(&Value::Object(map), &mut bytes);
        (bytes, hash)
    }

    /// Every field set: a field added to `NewRecord` must be added here (the struct literal
    /// stops compiling) and then to the encoder (this test fails).
    fn full() -> NewRecord {
        let mut params = Map::new();
        params.insert("repo".into(), json!("acme/site"));
        params.insert("amount".into(), json!(1250));
        params.insert(
            "nested".into(),
            json!({"z": [1, "two", null], "a": {"q\"uote": true}}),
        );
        NewRecord {
            kind: EventKind::Request,
            agent: Some("deploy-bot".into()),
            instance: Some("84dc5fc6".into()),
            chain: Some("orchestrator/deploy-bot".into()),
            cgroup_id: Some(62288),
            pid: Some(20359),
            uid: Some(1000),
            exe: Some("/usr/bin/python3 \u{e9}\n".into()),
            connector: Some("github".into()),
            action: Some("github.branch.delete".into()),
            params,
            decision: Some(Decision::Deny),
            would: Some(crate::record::Would::Approve),
            rule: Some("no-deletes".into()),
            reason: Some("rule `no-deletes` \"denies\"".into()),
            policy_version: Some("78e2956d769f".into()),
            approver: Some("alice".into()),
            upstream_status: Some(403),
            bytes_up: Some(0),
            bytes_down: Some(u64::MAX),
            decision_latency_us: Some(13),
            total_latency_us: Some(900),
            src_ip: Some("10.0.0.2".into()),
            src_port: Some(40000),
            dst_host: Some("api.github.com".into()),
            dst_ip: Some("140.82.112.6".into()),
            dst_port: Some(443),
            http_method: Some("DELETE".into()),
            http_path: Some("/repos/acme/site/git/refs/heads/main".into()),
            decision_seq: Some(41),
            outcome: Some(crate::record::OutcomeState::Completed),
            ttfb_us: Some(12_000),
            error: Some("upstream reset \"mid-body\"".into()),
            tokens_in: Some(1200),
            tokens_out: Some(340),
            cost_usd: Some(0.004_25),
            mcp_error: Some(false),
        }
    }

    #[test]
    fn direct_encoding_matches_the_value_path_for_full_and_sparse_records() {
        let ts = now_micros();
        let prev = "ab".repeat(32);
        let mut sparse = NewRecord::new(EventKind::Kill);
        sparse.agent = Some(String::new());
        for rec in [full(), NewRecord::new(EventKind::DnsQuery), sparse] {
            let (mut direct, mut scratch) = (vec![], Scratch::default());
            let hash = stored_bytes_into(7, &ts, &rec, &prev, &mut scratch, &mut direct);
            let reference = via_value(7, &ts, &rec, &prev);
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&reference.0)
            );
            assert_eq!(hash.as_str(), reference.1);
        }
    }

    #[test]
    fn timestamps_are_written_as_format_ts_writes_them() {
        use chrono::TimeZone;
        let cases = [
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(2026, 12, 5, 9, 21, 1).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 30, 45).single(),
        ];
        let micros = [0, 1, 999_999, 123_456, 500_000];
        for (ts, us) in cases.into_iter().flatten().zip(micros) {
            let ts = ts + chrono::Duration::microseconds(us);
            let mut ours = vec![];
            write_ts(&ts, &mut ours);
            let mut reference = vec![];
            write_string(&format_ts(&ts), &mut reference);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&reference)
            );
        }
        let now = crate::record::now_micros();
        let mut ours = vec![];
        write_ts(&now, &mut ours);
        assert_eq!(ours, format!("\"{}\"", format_ts(&now)).into_bytes());
    }
}
