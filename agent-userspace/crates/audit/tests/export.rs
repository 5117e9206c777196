//! JSONL and OCSF exports.

mod common;

use common::{action_record, open_db, open_log, temp_db};
use cordon_audit::{
    AuditConfig, Decision, EventKind, ExportFormat, JSONL_KEYS, NewRecord, export, record_hash,
};
use serde_json::{Map, Value, json};

fn export_lines(db: &redb::Database, format: ExportFormat) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    export(db, None, None, format, &mut out).expect("export");
    String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(|l| match serde_json::from_str(l).expect("line is JSON") {
            Value::Object(m) => m,
            other => panic!("line is not an object: {other}"),
        })
        .collect()
}

/// One record of each class the OCSF export maps to, plus a control-plane event.
fn mixed_log() -> (common::TempDb, std::sync::Arc<redb::Database>) {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    log.append_blocking(action_record("bot", 1, Decision::Deny))
        .expect("http");
    let mut tcp = NewRecord::new(EventKind::TcpConnect);
    tcp.agent = Some("bot".into());
    tcp.decision = Some(Decision::Allow);
    tcp.dst_ip = Some("203.0.113.7".into());
    tcp.dst_port = Some(5432);
    tcp.bytes_up = Some(10);
    tcp.bytes_down = Some(20);
    log.append_blocking(tcp).expect("tcp");
    let mut dns = NewRecord::new(EventKind::DnsQuery);
    dns.agent = Some("bot".into());
    dns.decision = Some(Decision::Deny);
    dns.dst_host = Some("exfil.example".into());
    dns.params.insert("type".into(), json!("TXT"));
    log.append_blocking(dns).expect("dns");
    let mut reload = NewRecord::new(EventKind::PolicyReload);
    reload.policy_version = Some("v8".into());
    log.append_blocking(reload).expect("reload");
    log.shutdown().expect("shutdown");
    (tmp, db)
}

#[test]
fn jsonl_lines_carry_the_required_keys_and_rehash_to_their_hash() {
    let (_tmp, db) = mixed_log();
    let lines = export_lines(&db, ExportFormat::Jsonl);
    assert_eq!(lines.len(), 4);
    let mut prev = cordon_audit::GENESIS_HASH.to_string();
    for (i, line) in lines.iter().enumerate() {
        for key in JSONL_KEYS {
            assert!(line.contains_key(key), "line {i} lacks `{key}`: {line:?}");
        }
        assert!(line["params"].is_object(), "params must be an object");
        assert_eq!(line["seq"], json!(i + 1));
        // Offline verification of the export alone.
        assert_eq!(line["hash"], json!(record_hash(line)));
        assert_eq!(line["prev_hash"], json!(prev));
        prev = line["hash"].as_str().expect("hash").to_string();
    }
    assert_eq!(lines[0]["action"], "github.branch.delete");
    assert_eq!(lines[0]["decision"], "deny");
    assert_eq!(lines[3]["agent"], Value::Null);
}

#[test]
fn export_time_window_is_since_inclusive_until_exclusive() {
    let (_tmp, db) = mixed_log();
    let all = export_lines(&db, ExportFormat::Jsonl);
    let ts = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(all[i]["ts"].as_str().expect("ts"))
            .expect("rfc3339")
            .with_timezone(&chrono::Utc)
    };
    let mut out = Vec::new();
    let s = export(&db, Some(ts(1)), Some(ts(3)), ExportFormat::Jsonl, &mut out).expect("export");
    assert_eq!(s.first_seq, Some(2));
    assert!(s.last_seq.is_some_and(|l| l <= 3));
    assert!(s.records >= 1);
}

fn int(ev: &Map<String, Value>, key: &str) -> i64 {
    ev.get(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("`{key}` missing or not an integer in {ev:?}"))
}

fn obj<'a>(v: &'a Value, path: &str) -> &'a Map<String, Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .get(part)
            .unwrap_or_else(|| panic!("`{path}` missing in {v}"));
    }
    cur.as_object()
        .unwrap_or_else(|| panic!("`{path}` is not an object in {v}"))
}

fn string(v: &Value, path: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .get(part)
            .unwrap_or_else(|| panic!("`{path}` missing in {v}"));
    }
    let s = cur
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string in {v}"));
    assert!(!s.is_empty(), "`{path}` is empty");
    s.to_string()
}

/// Base-event attributes OCSF 1.x requires of every class.
fn assert_base_event(ev: &Map<String, Value>, class_uid: i64, category_uid: i64) {
    let v = Value::Object(ev.clone());
    assert_eq!(int(ev, "class_uid"), class_uid);
    assert_eq!(int(ev, "category_uid"), category_uid);
    let activity = int(ev, "activity_id");
    assert_eq!(int(ev, "type_uid"), class_uid * 100 + activity);
    let time = int(ev, "time");
    assert!(time > 1_600_000_000_000, "time must be epoch milliseconds");
    assert!((0..=6).contains(&int(ev, "severity_id")) || int(ev, "severity_id") == 99);
    string(&v, "metadata.version");
    string(&v, "metadata.product.name");
    string(&v, "metadata.product.vendor_name");
    string(&v, "metadata.product.version");
    assert!(ev.get("status_id").is_some_and(Value::is_i64));
}

fn assert_endpoint(ev: &Value, name: &str) {
    let ep = obj(ev, name);
    let ids = ["ip", "hostname", "name", "uid", "svc_name"];
    assert!(
        ids.iter().any(|k| ep.contains_key(*k)),
        "{name} has no identifying attribute: {ep:?}"
    );
    if let Some(port) = ep.get("port") {
        assert!(port.is_u64(), "{name}.port must be an integer");
    }
}

#[test]
fn ocsf_events_have_every_required_field_of_their_class() {
    let (_tmp, db) = mixed_log();
    let events = export_lines(&db, ExportFormat::Ocsf);
    assert_eq!(events.len(), 4);

    // HTTP action -> API Activity (6003).
    let api = &events[0];
    let v = Value::Object(api.clone());
    assert_base_event(api, 6003, 6);
    assert_eq!(int(api, "activity_id"), 4, "DELETE maps to Delete");
    assert_eq!(string(&v, "api.operation"), "github.branch.delete");
    assert!(!obj(&v, "actor").is_empty());
    string(&v, "actor.user.name");
    assert_eq!(v["actor"]["process"]["pid"].as_u64(), Some(1001));
    assert_endpoint(&v, "src_endpoint");
    assert_endpoint(&v, "dst_endpoint");
    assert_eq!(string(&v, "http_request.http_method"), "DELETE");
    assert_eq!(string(&v, "http_request.url.hostname"), "api.github.com");
    assert_eq!(int(api, "disposition_id"), 2);
    assert_eq!(int(api, "action_id"), 2);
    assert_eq!(string(&v, "unmapped.cordon.rule"), "protect-main");
    assert_eq!(string(&v, "unmapped.cordon.policy_version"), "v7");

    // tcp.connect -> Network Activity (4001), allowed = Open.
    let net = &events[1];
    let v = Value::Object(net.clone());
    assert_base_event(net, 4001, 4);
    assert_eq!(int(net, "activity_id"), 1);
    assert_endpoint(&v, "src_endpoint");
    assert_endpoint(&v, "dst_endpoint");
    assert_eq!(v["dst_endpoint"]["port"].as_u64(), Some(5432));
    assert_eq!(v["traffic"]["bytes_out"].as_u64(), Some(10));
    assert_eq!(string(&v, "connection_info.protocol_name"), "tcp");

    // dns.query -> DNS Activity (4003), Query.
    let dns = &events[2];
    let v = Value::Object(dns.clone());
    assert_base_event(dns, 4003, 4);
    assert_eq!(int(dns, "activity_id"), 1);
    assert_eq!(string(&v, "query.hostname"), "exfil.example");
    assert_endpoint(&v, "src_endpoint");
    assert_eq!(int(dns, "disposition_id"), 2, "denied query is Blocked");

    // Control-plane event -> API Activity with the kind as operation.
    let reload = &events[3];
    let v = Value::Object(reload.clone());
    assert_base_event(reload, 6003, 6);
    assert_eq!(string(&v, "api.operation"), "policy.reload");
    assert!(!obj(&v, "actor").is_empty());
    assert_endpoint(&v, "src_endpoint");
}

#[test]
fn unknown_export_format_is_an_error() {
    assert!("csv".parse::<ExportFormat>().is_err());
    assert_eq!(
        "ocsf".parse::<ExportFormat>().ok(),
        Some(ExportFormat::Ocsf)
    );
}

#[test]
fn grant_lifecycle_records_map_to_api_activity_on_the_grant() {
    let tmp = temp_db();
    let db = open_db(&tmp.path);
    let log = open_log(&db, AuditConfig::default());
    let kinds = [
        (EventKind::GrantGranted, "Create"),
        (EventKind::GrantUsed, "Update"),
        (EventKind::GrantExhausted, "Delete"),
        (EventKind::GrantExpired, "Delete"),
        (EventKind::GrantRevoked, "Delete"),
    ];
    for (kind, _) in kinds {
        let mut rec = NewRecord::new(kind);
        rec.agent = Some("bot".into());
        rec.action = Some("github.pr.merge".into());
        // A use is recorded with the request it let through; the activity is
        // still the grant's, not the HTTP method's.
        rec.http_method = Some("PUT".into());
        rec.rule = Some("grant:g1".into());
        log.append_blocking(rec).expect("grant record");
    }
    log.shutdown().expect("shutdown");
    let events = export_lines(&db, ExportFormat::Ocsf);
    assert_eq!(events.len(), kinds.len());
    for (ev, (kind, activity)) in events.iter().zip(kinds) {
        assert_eq!(ev["class_uid"], json!(6003), "{kind:?}: {ev:?}");
        assert_eq!(ev["activity_name"], json!(activity), "{kind:?}: {ev:?}");
        assert_eq!(ev["status"], json!("Success"), "{kind:?}: {ev:?}");
    }
}

#[test]
fn grant_kinds_round_trip_through_their_names() {
    for (kind, name) in [
        (EventKind::GrantGranted, "grant.granted"),
        (EventKind::GrantUsed, "grant.used"),
        (EventKind::GrantExhausted, "grant.exhausted"),
        (EventKind::GrantExpired, "grant.expired"),
        (EventKind::GrantRevoked, "grant.revoked"),
    ] {
        assert_eq!(kind.as_str(), name);
        assert_eq!(EventKind::parse(name), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
    }
}
