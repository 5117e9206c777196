//! Enrichment: some actions lack what policy needs (a PR merge does not
//! say which branch it merges into). The connector names a GET that answers
//! it; Cordon asks the upstream itself, with the agent's bound credential,
//! and caches the answer briefly per agent.
use std::time::Duration;

use bytes::Bytes;
use cordon_connectors::Action;
use http::{Request, header};
use http_body_util::BodyExt;

use super::{body, credentials, upstream::Target};
use crate::cgroup::AgentPath;
use crate::daemon::Shared;

const MAX_BODY: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

pub type EnrichCache = moka::sync::Cache<String, Bytes>;

pub fn cache() -> EnrichCache {
    moka::sync::Cache::builder()
        .max_capacity(4096)
        .time_to_live(Duration::from_secs(30))
        .build()
}

pub async fn enrich(
    d: &Shared,
    agent: &AgentPath,
    target: &Target,
    authority: &str,
    action: &mut Action,
) {
    let specs = std::mem::take(&mut action.enrich);
    for spec in &specs {
        let scheme = if target.tls_name.is_some() {
            "https"
        } else {
            "http"
        };
        let key = format!("{}|{}|{}", agent.chain_display(), authority, spec.path);
        let body = match d.enrich_cache.get(&key) {
            Some(b) => b,
            None => match fetch(
                d,
                agent,
                target,
                scheme,
                authority,
                &spec.path,
                action.connector.as_deref(),
            )
            .await
            {
                Ok(b) => {
                    d.enrich_cache.insert(key, b.clone());
                    b
                }
                Err(e) => {
                    // The param stays absent: policy conditions on it fail
                    // closed (a `when` that cannot evaluate never allows).
                    tracing::info!(agent = %agent.chain_display(), path = %spec.path, "enrichment failed: {e}");
                    continue;
                }
            },
        };
        if let Err(e) = action.apply_enrichment(spec, &body) {
            tracing::info!(agent = %agent.chain_display(), path = %spec.path, "enrichment not applied: {e}");
        }
    }
    action.enrich = specs;
}

async fn fetch(
    d: &Shared,
    agent: &AgentPath,
    target: &Target,
    scheme: &str,
    authority: &str,
    path: &str,
    connector: Option<&str>,
) -> Result<Bytes, String> {
    let mut uri: http::Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::USER_AGENT,
        http::HeaderValue::from_static("cordon-enrich"),
    );
    let host = authority.split(':').next().unwrap_or(authority);
    credentials::inject(d, agent, connector, host, &mut headers, &mut uri).await?;
    let mut req = Request::get(uri)
        .body(body::empty())
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = headers;
    if !target.h2
        && let Ok(v) = http::HeaderValue::from_str(authority)
    {
        req.headers_mut().insert(header::HOST, v);
    }
    let client = d.pools.client(target, &d.upstream_tls);
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("upstream answered {}", resp.status()));
    }
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
    let collected = limited.collect().await.map_err(|e| e.to_string())?;
    Ok(collected.to_bytes())
}
