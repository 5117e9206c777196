//! Writes a record's stored bytes straight from its fields, in canonical form (see
//! `canonical`), without building a `serde_json::Value` first. Going through `Value` (a map
//! of owned strings, then sorting and writing it) used to be most of the audit's CPU.
//!
//! Encoding has two halves. A [`Draft`] holds every field but the three the chain decides
//! (`prev_hash`, `seq`, `ts`), and is made before the appenders' lock is taken
//! (`Appender::append`). Under the lock, [`Draft::finish_into`] fills those three in and
//! hashes: the lock is held for a copy and a SHA-256, not for the whole encoding, so the
//! proxy cores rarely wait for each other there.
//!
//! The output is byte-for-byte what `canonical` produces from the serialized record (hash, then
//! the record with its hash written canonically); the tests hold the two paths to that.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::{write_object, write_string};
use crate::encoded::Hash;
use crate::record::{NewRecord, format_ts};

/// A draft's buffer past this is dropped after use (`Draft::shrink`).
const KEEP_BYTES: usize = 64 << 10;

/// `"hash":"` + 64 hex digits + `",`: the hash entry, which always has a key after it.
const HASH_ENTRY: usize = 8 + 64 + 2;

enum Field<'a> {
    Str(&'a str),
    Int(u64),
    /// A finite float (non-finite ones are left out: JSON has no text for them).
    Float(serde_json::Number),
    Bool(bool),
    Params(&'a Map<String, Value>),
    /// `prev_hash`, `seq` or `ts`: filled in under the lock (its index in `Draft::holes`).
    Hole(usize),
}

/// A record's canonical bytes without its place in the chain (see the module comment).
/// Reused from one record to the next, so it allocates only while it grows.
#[derive(Default)]
pub(crate) struct Draft {
    body: Vec<u8>,
    /// Where the `hash` entry goes: the start of the first key after "hash".
    split: usize,
    /// Where the values of `prev_hash`, `seq` and `ts` go, in that (key) order.
    holes: [usize; 3],
}

impl Draft {
    /// Encodes every field of `rec`, keys in canonical (byte) order, leaving holes for the
    /// chain's three.
    pub fn encode(&mut self, rec: &NewRecord) {
        fn opt(v: &Option<String>) -> Option<Field<'_>> {
            v.as_deref().map(Field::Str)
        }
        fn int<'a>(v: Option<u64>) -> Option<Field<'a>> {
            v.map(Field::Int)
        }
        // Listed in byte order of their keys, so nothing is sorted per record; the tests
        // compare the output with the sorting reference path for every field set.
        let fields: [(&'static str, Option<Field<'_>>); 40] = [
            ("action", opt(&rec.action)),
            ("agent", opt(&rec.agent)),
            ("approver", opt(&rec.approver)),
            ("bytes_down", int(rec.bytes_down)),
            ("bytes_up", int(rec.bytes_up)),
            ("cgroup_id", int(rec.cgroup_id)),
            ("chain", opt(&rec.chain)),
            ("connector", opt(&rec.connector)),
            (
                "cost_usd",
                rec.cost_usd
                    .and_then(serde_json::Number::from_f64)
                    .map(Field::Float),
            ),
            ("decision", rec.decision.map(|d| Field::Str(d.as_str()))),
            ("decision_latency_us", int(rec.decision_latency_us)),
            ("decision_seq", int(rec.decision_seq)),
            ("dst_host", opt(&rec.dst_host)),
            ("dst_ip", opt(&rec.dst_ip)),
            ("dst_port", int(rec.dst_port.map(u64::from))),
            ("error", opt(&rec.error)),
            ("exe", opt(&rec.exe)),
            ("http_method", opt(&rec.http_method)),
            ("http_path", opt(&rec.http_path)),
            ("instance", opt(&rec.instance)),
            ("kind", Some(Field::Str(rec.kind.as_str()))),
            ("mcp_error", rec.mcp_error.map(Field::Bool)),
            ("outcome", rec.outcome.map(|o| Field::Str(o.as_str()))),
            (
                "params",
                (!rec.params.is_empty()).then_some(Field::Params(&rec.params)),
            ),
            ("pid", int(rec.pid.map(u64::from))),
            ("policy_version", opt(&rec.policy_version)),
            ("prev_hash", Some(Field::Hole(0))),
            ("reason", opt(&rec.reason)),
            ("rule", opt(&rec.rule)),
            ("seq", Some(Field::Hole(1))),
            ("src_ip", opt(&rec.src_ip)),
            ("src_port", int(rec.src_port.map(u64::from))),
            ("tokens_in", int(rec.tokens_in)),
            ("tokens_out", int(rec.tokens_out)),
            ("total_latency_us", int(rec.total_latency_us)),
            ("ts", Some(Field::Hole(2))),
            ("ttfb_us", int(rec.ttfb_us)),
            ("uid", int(rec.uid.map(u64::from))),
            ("upstream_status", int(rec.upstream_status.map(u64::from))),
            ("would", rec.would.map(|w| Field::Str(w.as_str()))),
        ];
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(
            fields
                .iter()
                .all(|(k, _)| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        // The first key that sorts after "hash": the hash entry goes before it, or before the
        // first present key after it.
        let after_hash = fields.partition_point(|(k, _)| *k < "hash");

        let body = &mut self.body;
        body.clear();
        let mut split = None;
        body.push(b'{');
        for (i, (key, value)) in fields.into_iter().enumerate() {
            let Some(value) = value else {
                continue;
            };
            if body.len() > 1 {
                body.push(b',');
            }
            if split.is_none() && i >= after_hash {
                split = Some(body.len());
            }
            // The keys are the names above, with nothing to escape: not scanned.
            body.push(b'"');
            body.extend_from_slice(key.as_bytes());
            body.extend_from_slice(b"\":");
            match value {
                Field::Str(v) => write_string(v, body),
                Field::Int(v) => body.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
                Field::Float(n) => body.extend_from_slice(n.to_string().as_bytes()),
                Field::Bool(b) => body.extend_from_slice(if b { b"true" } else { b"false" }),
                Field::Params(m) => write_object(m, body),
                Field::Hole(h) => self.holes[h] = body.len(),
            }
        }
        body.push(b'}');
        // `prev_hash` sorts after "hash", so there is always a key to put the entry before.
        self.split = split.unwrap_or(1);
    }

    /// Lets go of a buffer a large record grew, so one burst of big parameters does not pin
    /// memory in every thread that appended one.
    pub fn shrink(&mut self) {
        if self.body.capacity() > KEEP_BYTES {
            self.body = Vec::new();
        }
    }

    /// Appends the stored bytes of this draft at `seq` and `ts`, chained to `prev_hash`, to
    /// `out`, and returns the record's hash (over the bytes without the hash entry).
    pub fn finish_into(
        &self,
        seq: u64,
        ts: &DateTime<Utc>,
        prev_hash: &str,
        out: &mut Vec<u8>,
    ) -> Hash {
        let body = &self.body;
        let [prev_at, seq_at, ts_at] = self.holes;
        out.reserve(body.len() + HASH_ENTRY + 64 + 20 + 30);
        let start = out.len();
        out.extend_from_slice(&body[..self.split]);
        let entry = out.len();
        out.resize(entry + HASH_ENTRY, 0);
        out.extend_from_slice(&body[self.split..prev_at]);
        write_string(prev_hash, out);
        out.extend_from_slice(&body[prev_at..seq_at]);
        out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        out.extend_from_slice(&body[seq_at..ts_at]);
        write_ts(ts, out);
        out.extend_from_slice(&body[ts_at..]);
        let mut digest = Sha256::new();
        digest.update(&out[start..entry]);
        digest.update(&out[entry + HASH_ENTRY..]);
        let hash = Hash::of(&digest.finalize());
        let slot = &mut out[entry..entry + HASH_ENTRY];
        slot[..8].copy_from_slice(b"\"hash\":\"");
        slot[8..72].copy_from_slice(hash.as_str().as_bytes());
        slot[72..].copy_from_slice(b"\",");
        hash
    }
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
        // One draft for every record, as an appender thread reuses its own, and one output
        // buffer, as a group is written back to back.
        let (mut out, mut draft) = (b"earlier records".to_vec(), Draft::default());
        let records = [full(), NewRecord::new(EventKind::DnsQuery), sparse, full()];
        for (rec, seq) in records.iter().zip([7, 1_234_567_890_123, 1, u64::MAX]) {
            let start = out.len();
            draft.encode(rec);
            let hash = draft.finish_into(seq, &ts, &prev, &mut out);
            let direct = out[start..].to_vec();
            let reference = via_value(seq, &ts, rec, &prev);
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
