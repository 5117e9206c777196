//! Pending approvals are posted to an optional webhook as JSON with a
//! Slack-compatible `text` field, so a chat channel can carry them.
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
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
        "deadline": info.deadline,
        "text": format!(
            "Cordon: agent `{}` wants `{}` {} (rule {}). Approve: `cordon approve {}`; deny: `cordon deny {}`",
            info.chain, info.action, serde_json::Value::Object(info.params.clone()), info.rule, info.id, info.id
        ),
    });
    tokio::spawn(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
        let req = http::Request::post(url.as_str())
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())));
        let Ok(req) = req else {
            tracing::warn!(%url, "approval webhook: bad URL");
            return;
        };
        match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                if !status.is_success() {
                    tracing::warn!(%url, %status, "approval webhook answered with an error");
                }
            }
            Ok(Err(e)) => tracing::warn!(%url, "approval webhook failed: {e}"),
            Err(_) => tracing::warn!(%url, "approval webhook timed out"),
        }
    });
}
