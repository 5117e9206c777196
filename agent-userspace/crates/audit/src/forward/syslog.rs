//! One audit record as an RFC 5424 syslog message, framed for TCP by octet counting
//! (RFC 6587 §3.4.1: `LEN SP MSG`), so a record may hold any byte a JSON line can.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [cordon@32473 seq="42" hash="…"] MSG`
//!
//! MSG is the record's export line (`cordon audit export --format jsonl|ocsf`), byte for byte,
//! so a collector's copy can be checked against the local chain. The structured data repeats
//! seq and hash for collectors that index SD rather than parse the body (32473 is the private
//! enterprise number RFC 5612 sets aside for examples and documentation).

use serde_json::Value;

use crate::record::{Decision, EventKind};

/// Syslog facility (RFC 5424 §6.2.1), named as in `cordon.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    /// 13, "log audit": what the trail is.
    pub const AUDIT: Facility = Facility(13);

    const NAMES: [(&'static str, u8); 16] = [
        ("user", 1),
        ("daemon", 3),
        ("auth", 4),
        ("authpriv", 10),
        ("audit", 13),
        ("alert", 14),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
        ("security", 13),
        ("syslog", 5),
    ];

    pub fn parse(name: &str) -> Option<Facility> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, code)| Facility(*code))
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::NAMES.iter().map(|(n, _)| *n)
    }

    pub fn code(self) -> u8 {
        self.0
    }
}

/// The header fields that are the same for every message of one forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub facility: Facility,
    /// HOSTNAME: printable ASCII, at most 255 (anything else becomes `-` / is cut).
    pub hostname: String,
    /// APP-NAME, at most 48.
    pub app_name: String,
    /// PROCID, at most 128.
    pub procid: String,
}

impl Header {
    pub fn new(facility: Facility, hostname: &str, app_name: &str, procid: &str) -> Header {
        Header {
            facility,
            hostname: header_field(hostname, 255),
            app_name: header_field(app_name, 48),
            procid: header_field(procid, 128),
        }
    }
}

/// RFC 5424 header fields are PRINTUSASCII (33..=126) or the NILVALUE `-`.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// What the message says about one record: read from its stored JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHead<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub kind: &'a str,
    pub hash: &'a str,
    pub severity: u8,
}

impl<'a> RecordHead<'a> {
    pub fn of(seq: u64, stored: &'a serde_json::Map<String, Value>) -> RecordHead<'a> {
        let text = |k: &str| stored.get(k).and_then(Value::as_str).unwrap_or("-");
        let kind = text("kind");
        let decision = stored
            .get("decision")
            .and_then(Value::as_str)
            .and_then(Decision::parse);
        let outcome = stored.get("outcome").and_then(Value::as_str);
        RecordHead {
            seq,
            ts: text("ts"),
            kind,
            hash: text("hash"),
            severity: severity(EventKind::parse(kind), decision, outcome),
        }
    }
}

/// 4 warning for refusals and kills, 5 notice for an exchange that did not complete,
/// 6 informational for the rest.
pub fn severity(kind: Option<EventKind>, decision: Option<Decision>, outcome: Option<&str>) -> u8 {
    match (kind, decision, outcome) {
        (Some(EventKind::Kill | EventKind::EnvelopeExceeded | EventKind::ControlRefused), _, _) => {
            4
        }
        (Some(EventKind::ContainRefused), _, _) | (_, Some(Decision::Deny), _) => 4,
        (Some(EventKind::Outcome), _, Some(o)) if o != "completed" => 5,
        _ => 6,
    }
}

/// Appends `LEN SP <PRI>1 …` for one record to `out`.
pub fn frame(header: &Header, rec: &RecordHead<'_>, body: &[u8], out: &mut Vec<u8>) {
    let pri = u16::from(header.facility.code()) * 8 + u16::from(rec.severity);
    let msgid = header_field(rec.kind, 32);
    let head = format!(
        "<{pri}>1 {} {} {} {} {msgid} [cordon@32473 seq=\"{}\" hash=\"{}\"] ",
        header_field(rec.ts, 64),
        header.hostname,
        header.app_name,
        header.procid,
        rec.seq,
        sd_value(rec.hash),
    );
    let len = head.len() + body.len();
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3).
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test records are objects"),
        }
    }

    #[test]
    fn a_record_is_one_octet_counted_rfc5424_message() {
        let rec = stored(json!({
            "seq": 42, "ts": "2025-05-01T12:00:00.123456Z", "kind": "request",
            "decision": "deny", "hash": "9f2c"
        }));
        let header = Header::new(Facility::AUDIT, "host-1", "cordon", "4711");
        let body = br#"{"seq":42,"text":"caf\u00e9 \u00e9"}"#;
        let mut out = Vec::new();
        frame(&header, &RecordHead::of(42, &rec), body, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(
            len.parse::<usize>().unwrap(),
            msg.len(),
            "LEN counts octets"
        );
        // facility 13 * 8 + severity 4 (a deny)
        assert_eq!(
            msg,
            format!(
                "<108>1 2025-05-01T12:00:00.123456Z host-1 cordon 4711 request \
                 [cordon@32473 seq=\"42\" hash=\"9f2c\"] {}",
                std::str::from_utf8(body).unwrap()
            )
        );
    }

    #[test]
    fn octets_not_characters_are_counted() {
        let rec = stored(json!({"seq": 1, "ts": "t", "kind": "request", "hash": "h"}));
        let header = Header::new(Facility::AUDIT, "h", "cordon", "-");
        let body = "{\"agent\":\"é\"}".as_bytes();
        let mut out = Vec::new();
        frame(&header, &RecordHead::of(1, &rec), body, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.chars().count() < msg.len());
    }

    #[test]
    fn header_fields_are_printable_ascii_or_nil() {
        let h = Header::new(Facility::AUDIT, "bad host\u{e9}", "", "12");
        assert_eq!(h.hostname, "badhost");
        assert_eq!(h.app_name, "-");
        assert_eq!(
            Header::new(Facility::AUDIT, &"x".repeat(300), "a", "p")
                .hostname
                .len(),
            255
        );
    }

    #[test]
    fn severity_follows_what_the_record_says() {
        assert_eq!(
            severity(Some(EventKind::Request), Some(Decision::Allow), None),
            6
        );
        assert_eq!(
            severity(Some(EventKind::Request), Some(Decision::Deny), None),
            4
        );
        assert_eq!(severity(Some(EventKind::Kill), None, None), 4);
        assert_eq!(severity(Some(EventKind::Outcome), None, Some("aborted")), 5);
        assert_eq!(
            severity(Some(EventKind::Outcome), None, Some("completed")),
            6
        );
    }

    #[test]
    fn facilities_are_named_as_in_syslog() {
        assert_eq!(Facility::parse("local3").map(Facility::code), Some(19));
        assert_eq!(Facility::parse("audit"), Some(Facility::AUDIT));
        assert_eq!(Facility::parse("loca13"), None);
    }

    #[test]
    fn sd_values_escape_their_specials() {
        assert_eq!(sd_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
    }
}
