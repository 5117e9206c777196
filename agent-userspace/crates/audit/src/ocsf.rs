//! Mapping of audit records onto OCSF 1.3 event classes.
//!
//! - `tcp.connect` -> Network Activity (4001): Open when allowed, Refuse when denied.
//! - `dns.query` -> DNS Activity (4003), activity Query.
//! - everything else (HTTP actions, approvals, limits, control-plane events) -> API Activity
//!   (6003); the CRUD activity comes from the HTTP method, else from the action's verb.
//!
//! Cordon-specific fields (rule, policy version, params, chain hashes) go under
//! `unmapped.cordon`, so an exported event can still be traced back to its record.

use serde_json::{Map, Value, json};

use crate::query::format_line;
use crate::record::{AuditRecord, Decision, EventKind, format_ts};

pub const OCSF_VERSION: &str = "1.3.0";

pub const CLASS_NETWORK_ACTIVITY: u64 = 4001;
pub const CLASS_DNS_ACTIVITY: u64 = 4003;
pub const CLASS_API_ACTIVITY: u64 = 6003;

/// The OCSF event for one record.
pub fn to_ocsf(r: &AuditRecord) -> Value {
    let (class_uid, class_name, category_uid, category_name) = match r.kind {
        EventKind::TcpConnect => (
            CLASS_NETWORK_ACTIVITY,
            "Network Activity",
            4,
            "Network Activity",
        ),
        EventKind::DnsQuery => (CLASS_DNS_ACTIVITY, "DNS Activity", 4, "Network Activity"),
        _ => (
            CLASS_API_ACTIVITY,
            "API Activity",
            6,
            "Application Activity",
        ),
    };
    let (activity_id, activity_name) = activity(r, class_uid);
    let (severity_id, severity) = severity(r);
    let (status_id, status) = status(r);

    let mut ev = Map::new();
    ev.insert("class_uid".into(), json!(class_uid));
    ev.insert("class_name".into(), json!(class_name));
    ev.insert("category_uid".into(), json!(category_uid));
    ev.insert("category_name".into(), json!(category_name));
    ev.insert("activity_id".into(), json!(activity_id));
    ev.insert("activity_name".into(), json!(activity_name));
    ev.insert("type_uid".into(), json!(class_uid * 100 + activity_id));
    ev.insert(
        "type_name".into(),
        json!(format!("{class_name}: {activity_name}")),
    );
    ev.insert("time".into(), json!(r.ts.timestamp_millis()));
    ev.insert("severity_id".into(), json!(severity_id));
    ev.insert("severity".into(), json!(severity));
    ev.insert("status_id".into(), json!(status_id));
    ev.insert("status".into(), json!(status));
    if let Some(reason) = &r.reason {
        ev.insert("status_detail".into(), json!(reason));
    }
    ev.insert("message".into(), json!(format_line(r)));
    ev.insert("metadata".into(), metadata(r));
    ev.insert("actor".into(), actor(r));
    ev.insert("src_endpoint".into(), src_endpoint(r));
    ev.insert("dst_endpoint".into(), dst_endpoint(r));
    if let Some(decision) = r.decision {
        let (action_id, action, disposition_id, disposition) = control(r.kind, decision);
        ev.insert("action_id".into(), json!(action_id));
        ev.insert("action".into(), json!(action));
        ev.insert("disposition_id".into(), json!(disposition_id));
        ev.insert("disposition".into(), json!(disposition));
    }
    match class_uid {
        CLASS_API_ACTIVITY => api_fields(r, &mut ev),
        CLASS_DNS_ACTIVITY => {
            let hostname = r.dst_host.clone().or_else(|| param_str(r, "name"));
            let mut query = Map::new();
            query.insert("hostname".into(), json!(hostname.unwrap_or_default()));
            if let Some(t) = param_str(r, "type") {
                query.insert("type".into(), json!(t));
            }
            ev.insert("query".into(), Value::Object(query));
            network_fields(r, "udp", 17, &mut ev);
        }
        _ => network_fields(r, "tcp", 6, &mut ev),
    }
    ev.insert("unmapped".into(), json!({ "cordon": unmapped(r) }));
    Value::Object(ev)
}

fn activity(r: &AuditRecord, class_uid: u64) -> (u64, &'static str) {
    match class_uid {
        CLASS_NETWORK_ACTIVITY => match r.decision {
            Some(Decision::Deny) => (5, "Refuse"),
            _ => (1, "Open"),
        },
        CLASS_DNS_ACTIVITY => (1, "Query"),
        _ => api_activity(r),
    }
}

fn api_activity(r: &AuditRecord) -> (u64, &'static str) {
    let by_method = r.http_method.as_deref().map(str::to_ascii_uppercase);
    match by_method.as_deref() {
        Some("POST") => return (1, "Create"),
        Some("GET" | "HEAD" | "OPTIONS") => return (2, "Read"),
        Some("PUT" | "PATCH") => return (3, "Update"),
        Some("DELETE") => return (4, "Delete"),
        _ => {}
    }
    let verb = r
        .action
        .as_deref()
        .and_then(|a| a.rsplit('.').next())
        .unwrap_or_default();
    match verb {
        "create" | "add" | "send" | "post" | "charge" => (1, "Create"),
        "get" | "list" | "read" | "view" | "search" => (2, "Read"),
        "update" | "edit" | "set" | "merge" | "close" | "patch" => (3, "Update"),
        "delete" | "remove" | "destroy" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn severity(r: &AuditRecord) -> (u64, &'static str) {
    match (r.kind, r.decision) {
        (EventKind::Kill, _) => (4, "High"),
        (EventKind::ControlRefused | EventKind::EnvelopeExceeded, _) => (3, "Medium"),
        (_, Some(Decision::Deny)) => (3, "Medium"),
        (_, Some(Decision::Pending)) => (2, "Low"),
        _ => (1, "Informational"),
    }
}

fn status(r: &AuditRecord) -> (u64, &'static str) {
    match r.decision {
        Some(Decision::Deny) => (2, "Failure"),
        Some(Decision::Pending) => (0, "Unknown"),
        _ if r.kind == EventKind::ControlRefused => (2, "Failure"),
        _ if r.upstream_status.is_some_and(|s| s >= 400) => (2, "Failure"),
        _ => (1, "Success"),
    }
}

/// security_control profile: (action_id, action, disposition_id, disposition).
fn control(kind: EventKind, d: Decision) -> (u64, &'static str, u64, &'static str) {
    match d {
        Decision::Allow if kind == EventKind::ApprovalGranted => (1, "Allowed", 8, "Approved"),
        Decision::Allow => (1, "Allowed", 1, "Allowed"),
        Decision::Deny => (2, "Denied", 2, "Blocked"),
        Decision::Pending => (0, "Unknown", 14, "Delayed"),
    }
}

fn metadata(r: &AuditRecord) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {
            "name": "Cordon",
            "vendor_name": "Cordon",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "uid": r.seq.to_string(),
        "sequence": r.seq,
        "log_name": "cordon-audit",
        "original_time": format_ts(&r.ts),
        "profiles": ["security_control"],
    })
}

fn actor(r: &AuditRecord) -> Value {
    let mut user = Map::new();
    user.insert("name".into(), json!(r.agent.as_deref().unwrap_or("cordon")));
    if let Some(uid) = r.uid {
        user.insert("uid".into(), json!(uid.to_string()));
    }
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user));
    actor.insert("app_name".into(), json!("cordon"));
    if let Some(chain) = &r.chain {
        actor.insert("invoked_by".into(), json!(chain));
    }
    if r.pid.is_some() || r.exe.is_some() {
        let mut process = Map::new();
        if let Some(pid) = r.pid {
            process.insert("pid".into(), json!(pid));
        }
        if let Some(exe) = &r.exe {
            let name = exe.rsplit('/').next().unwrap_or(exe);
            process.insert("name".into(), json!(name));
            process.insert(
                "file".into(),
                json!({ "name": name, "path": exe, "type_id": 1, "type": "Regular File" }),
            );
        }
        actor.insert("process".into(), Value::Object(process));
    }
    Value::Object(actor)
}

fn src_endpoint(r: &AuditRecord) -> Value {
    let mut ep = Map::new();
    ep.insert("name".into(), json!(r.agent.as_deref().unwrap_or("cordon")));
    if let Some(instance) = &r.instance {
        ep.insert("uid".into(), json!(instance));
    }
    if let Some(ip) = &r.src_ip {
        ep.insert("ip".into(), json!(ip));
    }
    if let Some(port) = r.src_port {
        ep.insert("port".into(), json!(port));
    }
    Value::Object(ep)
}

fn dst_endpoint(r: &AuditRecord) -> Value {
    let mut ep = Map::new();
    if let Some(host) = &r.dst_host {
        ep.insert("hostname".into(), json!(host));
    }
    if let Some(ip) = &r.dst_ip {
        ep.insert("ip".into(), json!(ip));
    }
    if let Some(port) = r.dst_port {
        ep.insert("port".into(), json!(port));
    }
    // An endpoint needs at least one identifying attribute; control-plane events target Cordon.
    let svc = r.connector.as_deref().unwrap_or("cordon");
    ep.insert("svc_name".into(), json!(svc));
    Value::Object(ep)
}

fn api_fields(r: &AuditRecord, ev: &mut Map<String, Value>) {
    let operation = r.action.as_deref().unwrap_or(r.kind.as_str());
    let mut api = Map::new();
    api.insert("operation".into(), json!(operation));
    api.insert(
        "service".into(),
        json!({ "name": r.connector.as_deref().unwrap_or("cordon") }),
    );
    api.insert("request".into(), json!({ "uid": r.seq.to_string() }));
    if let Some(code) = r.upstream_status {
        api.insert("response".into(), json!({ "code": code }));
        ev.insert("http_response".into(), json!({ "code": code }));
    }
    ev.insert("api".into(), Value::Object(api));
    if r.http_method.is_some() || r.http_path.is_some() {
        let mut url = Map::new();
        url.insert("scheme".into(), json!("https"));
        if let Some(host) = &r.dst_host {
            url.insert("hostname".into(), json!(host));
        }
        if let Some(path) = &r.http_path {
            url.insert("path".into(), json!(path));
        }
        if let Some(port) = r.dst_port {
            url.insert("port".into(), json!(port));
        }
        let mut req = Map::new();
        if let Some(m) = &r.http_method {
            req.insert("http_method".into(), json!(m.to_ascii_uppercase()));
        }
        req.insert("url".into(), Value::Object(url));
        ev.insert("http_request".into(), Value::Object(req));
    }
}

fn network_fields(r: &AuditRecord, proto: &str, proto_num: u64, ev: &mut Map<String, Value>) {
    ev.insert(
        "connection_info".into(),
        json!({ "protocol_name": proto, "protocol_num": proto_num, "direction_id": 2, "direction": "Outbound" }),
    );
    if r.bytes_up.is_some() || r.bytes_down.is_some() {
        let mut traffic = Map::new();
        if let Some(b) = r.bytes_up {
            traffic.insert("bytes_out".into(), json!(b));
        }
        if let Some(b) = r.bytes_down {
            traffic.insert("bytes_in".into(), json!(b));
        }
        ev.insert("traffic".into(), Value::Object(traffic));
    }
}

fn param_str(r: &AuditRecord, key: &str) -> Option<String> {
    r.params
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn unmapped(r: &AuditRecord) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(r.seq));
    m.insert("kind".into(), json!(r.kind.as_str()));
    m.insert("prev_hash".into(), json!(r.prev_hash));
    m.insert("hash".into(), json!(r.hash));
    let rec = &r.record;
    let texts = [
        ("instance", &rec.instance),
        ("chain", &rec.chain),
        ("rule", &rec.rule),
        ("policy_version", &rec.policy_version),
        ("approver", &rec.approver),
    ];
    for (k, v) in texts {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    let numbers = [
        ("cgroup_id", rec.cgroup_id),
        ("bytes_up", rec.bytes_up),
        ("bytes_down", rec.bytes_down),
        ("decision_latency_us", rec.decision_latency_us),
        ("total_latency_us", rec.total_latency_us),
    ];
    for (k, v) in numbers {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = rec.decision {
        m.insert("decision".into(), json!(d.as_str()));
    }
    if !rec.params.is_empty() {
        m.insert("params".into(), Value::Object(rec.params.clone()));
    }
    Value::Object(m)
}
