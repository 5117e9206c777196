//! Export of a time window of the log, as JSON Lines (the stored records, verifiable offline)
//! or as OCSF events for a SIEM.

use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase};
use serde_json::{Map, Value};

use crate::canonical::write_value;
use crate::chunks::records_from;
use crate::error::{AuditError, DbContext};
use crate::ocsf::to_ocsf;
use crate::record::AuditRecord;
use crate::store::{corrupt, decode_map, open_records};

/// Keys every JSONL line carries (`null`, or `{}` for params, when the record has no value).
pub const JSONL_KEYS: [&str; 10] = [
    "seq",
    "ts",
    "agent",
    "action",
    "params",
    "decision",
    "rule",
    "policy_version",
    "prev_hash",
    "hash",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Ocsf,
}

impl FromStr for ExportFormat {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<ExportFormat, AuditError> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "ocsf" => Ok(ExportFormat::Ocsf),
            other => Err(AuditError::UnknownFormat(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

/// Writes every record with `since <= ts < until` (either bound optional), one JSON object per
/// line, oldest first.
pub fn export(
    db: &Database,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<ExportSummary, AuditError> {
    let txn = db.begin_read().ctx("begin read")?;
    let mut summary = ExportSummary::default();
    let Some(records) = open_records(&txn)? else {
        return Ok(summary);
    };
    let mut line = Vec::with_capacity(1024);
    for entry in records_from(&records, 0)? {
        let (seq, bytes) = entry?;
        let map = decode_map(seq, &bytes)?;
        let ts = record_ts(seq, &map)?;
        if since.is_some_and(|s| ts < s) || until.is_some_and(|u| ts >= u) {
            continue;
        }
        line.clear();
        write_line(seq, map, format, &mut line)?;
        line.push(b'\n');
        out.write_all(&line)?;
        summary.records += 1;
        summary.first_seq.get_or_insert(seq);
        summary.last_seq = Some(seq);
    }
    out.flush()?;
    Ok(summary)
}

/// Appends one record's export line (without the newline) to `out`: what `export` writes and
/// what the syslog forwarder sends as the message.
pub(crate) fn write_line(
    seq: u64,
    stored: Map<String, Value>,
    format: ExportFormat,
    out: &mut Vec<u8>,
) -> Result<(), AuditError> {
    match format {
        ExportFormat::Jsonl => write_value(&Value::Object(jsonl_line(stored)), out),
        ExportFormat::Ocsf => {
            let rec: AuditRecord =
                serde_json::from_value(Value::Object(stored)).map_err(|e| corrupt(seq, e))?;
            write_value(&to_ocsf(&rec), out);
        }
    }
    Ok(())
}

/// The stored record with the guaranteed keys filled in. Added keys are `null` / `{}`, which
/// the canonical form ignores, so the line still re-hashes to its `hash`.
fn jsonl_line(mut map: Map<String, Value>) -> Map<String, Value> {
    for key in JSONL_KEYS {
        let empty = if key == "params" {
            Value::Object(Map::new())
        } else {
            Value::Null
        };
        map.entry(key).or_insert(empty);
    }
    map
}

fn record_ts(seq: u64, map: &Map<String, Value>) -> Result<DateTime<Utc>, AuditError> {
    let text = map.get("ts").and_then(Value::as_str).unwrap_or_default();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(seq, format!("ts `{text}`: {e}")))
}
