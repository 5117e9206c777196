//! Pending approvals are posted to an optional webhook as JSON with a
//! Slack-compatible `text` field, so a chat channel can carry them.
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use serde_json::json;

use super::{Shared, approvals::PendingInfo};

pub fn notify(d: &Shared, info: &PendingInfo) {
    let Some(url) = d.cfg.approval_webhook.clone() else {
        return;
    };
    let body = json!({
        "id": info.id,
        "agent": info.chain,
        "action": info.action,
        "params": info.params,
        "rule": info.rule,
        "reason": info.reason,
        "decided_by": info.decided_by,
        "credential": info.credential,
        "deadline": info.deadline,
        "text": format!(
            "Cordon: agent `{}` wants `{}` {} (rule {}; credential {}). Approve: `cordon approve {}` \
             (once; or --uses N, --for 1h, --always); deny: `cordon deny {}`",
            info.chain,
            info.action,
            serde_json::Value::Object(info.params.clone()),
            info.rule,
            info.credential.as_deref().unwrap_or("none"),
            info.id,
            info.id
        ),
    });
    let d = d.clone();
    tokio::spawn(async move {
        if let Err(e) = post(&d, &url, body.to_string()).await {
            tracing::warn!(%url, "approval webhook failed: {e}");
        }
    });
}

/// Posts through the same verified, pooled client the proxy uses, so an
/// https webhook is checked against the system roots (and --upstream-ca).
async fn post(d: &Shared, url: &str, body: String) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("the URL must be http:// or https://".into()),
    };
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let dst = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let target = crate::proxy::upstream::Target {
        chain: "cordon-webhook".into(),
        dst,
        tls_name: tls.then(|| host.clone()),
        offer_h2: false,
    };
    let client = d.pools.daemon.client(&target, &d.upstream_tls);
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .body(
            Full::new(bytes::Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    Ok(())
}
