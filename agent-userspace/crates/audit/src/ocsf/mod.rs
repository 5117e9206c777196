//! Mapping of audit records onto OCSF 1.3 event classes.
//!
//! - `tcp.connect` -> Network Activity (4001): Open when allowed, Refuse when denied.
//! - `dns.query` -> DNS Activity (4003), activity Query.
//! - everything else (HTTP actions, approvals, limits, control-plane events) -> API Activity
//!   (6003); the CRUD activity comes from the HTTP method, else from the action's verb.
//!
//! - `outcome` -> the class of its decision (Network Activity, activity Close, for a
//!   `tcp.connect` flow; API Activity otherwise), `status_id` Success/Failure by the upstream
//!   status and the outcome state, `metadata.correlation_uid` = the decision's seq.
//!
//! Cordon-specific fields (rule, policy version, params, chain hashes) go under
//! `unmapped.cordon`, so an exported event can still be traced back to its record.

mod objects;

use serde_json::{Map, Value, json};

use crate::query::format_line;
use crate::record::{AuditRecord, Decision, EventKind, OutcomeState};
use objects::{
    actor, api_fields, dst_endpoint, metadata, network_fields, param_str, src_endpoint, unmapped,
};

pub const OCSF_VERSION: &str = "1.3.0";

pub const CLASS_NETWORK_ACTIVITY: u64 = 4001;
pub const CLASS_DNS_ACTIVITY: u64 = 4003;
pub const CLASS_API_ACTIVITY: u64 = 6003;

/// The OCSF event for one record.
pub fn to_ocsf(r: &AuditRecord) -> Value {
    let tcp_outcome = r.kind == EventKind::Outcome && r.action.as_deref() == Some("tcp.connect");
    let (class_uid, class_name, category_uid, category_name) = match r.kind {
        _ if tcp_outcome => (
            CLASS_NETWORK_ACTIVITY,
            "Network Activity",
            4,
            "Network Activity",
        ),
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
    if let Some(detail) = r.reason.as_ref().or(r.error.as_ref()) {
        ev.insert("status_detail".into(), json!(detail));
    }
    if r.kind == EventKind::Outcome {
        if let Some(code) = r.upstream_status {
            ev.insert("status_code".into(), json!(code.to_string()));
        }
        if let Some(us) = r.total_latency_us {
            ev.insert("duration".into(), json!(us / 1000));
        }
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
        CLASS_NETWORK_ACTIVITY if r.kind == EventKind::Outcome => (2, "Close"),
        CLASS_NETWORK_ACTIVITY => match r.decision {
            Some(Decision::Deny) => (5, "Refuse"),
            _ => (1, "Open"),
        },
        CLASS_DNS_ACTIVITY => (1, "Query"),
        _ => api_activity(r),
    }
}

fn api_activity(r: &AuditRecord) -> (u64, &'static str) {
    // A grant's lifecycle is an activity on the grant, not on the action it
    // covers: given (Create), a use taken (Update), gone (Delete).
    match r.kind {
        EventKind::GrantGranted => return (1, "Create"),
        EventKind::GrantUsed => return (3, "Update"),
        EventKind::GrantExhausted | EventKind::GrantExpired | EventKind::GrantRevoked => {
            return (4, "Delete");
        }
        _ => {}
    }
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
        (EventKind::Outcome, _) if outcome_failed(r) != Some(false) => (2, "Low"),
        _ => (1, "Informational"),
    }
}

/// For an outcome: whether it failed (`None` when it cannot be told).
fn outcome_failed(r: &AuditRecord) -> Option<bool> {
    match r.outcome {
        Some(OutcomeState::Unknown) | None => None,
        Some(OutcomeState::Failed | OutcomeState::Aborted) => Some(true),
        Some(OutcomeState::Completed) => Some(r.upstream_status.is_some_and(|s| s >= 400)),
    }
}

fn status(r: &AuditRecord) -> (u64, &'static str) {
    if r.kind == EventKind::Outcome {
        return match outcome_failed(r) {
            Some(true) => (2, "Failure"),
            Some(false) => (1, "Success"),
            None => (0, "Unknown"),
        };
    }
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
