//! OCSF objects built from a record: metadata, actor, endpoints, class-specific attributes.

use serde_json::{Map, Value, json};

use super::OCSF_VERSION;
use crate::record::{AuditRecord, format_ts};

pub(super) fn metadata(r: &AuditRecord) -> Value {
    // A decision and its outcome share one correlation id: the decision's seq.
    let correlation = r.decision_seq.unwrap_or(r.seq);
    json!({
        "correlation_uid": correlation.to_string(),
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

pub(super) fn actor(r: &AuditRecord) -> Value {
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

pub(super) fn src_endpoint(r: &AuditRecord) -> Value {
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

pub(super) fn dst_endpoint(r: &AuditRecord) -> Value {
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

pub(super) fn api_fields(r: &AuditRecord, ev: &mut Map<String, Value>) {
    let operation = r.action.as_deref().unwrap_or(r.kind.as_str());
    let mut api = Map::new();
    api.insert("operation".into(), json!(operation));
    api.insert(
        "service".into(),
        json!({ "name": r.connector.as_deref().unwrap_or("cordon") }),
    );
    api.insert("request".into(), json!({ "uid": r.seq.to_string() }));
    if r.upstream_status.is_some() || r.error.is_some() {
        let mut response = Map::new();
        if let Some(code) = r.upstream_status {
            response.insert("code".into(), json!(code));
            ev.insert("http_response".into(), json!({ "code": code }));
        }
        if let Some(e) = &r.error {
            response.insert("error_message".into(), json!(e));
        }
        api.insert("response".into(), Value::Object(response));
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

pub(super) fn network_fields(
    r: &AuditRecord,
    proto: &str,
    proto_num: u64,
    ev: &mut Map<String, Value>,
) {
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

pub(super) fn param_str(r: &AuditRecord, key: &str) -> Option<String> {
    r.params
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub(super) fn unmapped(r: &AuditRecord) -> Value {
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
        ("decision_seq", rec.decision_seq),
        ("ttfb_us", rec.ttfb_us),
        ("tokens_in", rec.tokens_in),
        ("tokens_out", rec.tokens_out),
    ];
    for (k, v) in numbers {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = rec.decision {
        m.insert("decision".into(), json!(d.as_str()));
    }
    if let Some(w) = rec.would {
        m.insert("would".into(), json!(w.as_str()));
    }
    if let Some(o) = rec.outcome {
        m.insert("outcome".into(), json!(o.as_str()));
    }
    if let Some(c) = rec.cost_usd {
        m.insert("cost_usd".into(), json!(c));
    }
    if let Some(e) = rec.mcp_error {
        m.insert("mcp_error".into(), json!(e));
    }
    if !rec.params.is_empty() {
        m.insert("params".into(), Value::Object(rec.params.clone()));
    }
    Value::Object(m)
}
