//! Enrichment: some actions lack what policy needs (a PR merge does not
//! say which branch it merges into). The connector names a GET that answers
//! it; Cordon asks the upstream itself, with the agent's bound credential,
//! and caches the answer briefly per agent.
use std::time::Duration;

use bytes::Bytes;
use cordon_connectors::Action;
use http::{Request, header};
use http_body_util::BodyExt;

use super::{
    body,
    env::Env,
    inject,
    pipeline::{credential_plan, head::Head},
    redact,
    upstream::Target,
};
use crate::{cgroup::AgentPath, request::Pinned};

const MAX_BODY: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

pub type EnrichCache = moka::sync::Cache<String, Bytes>;

pub fn cache() -> EnrichCache {
    moka::sync::Cache::builder()
        .max_capacity(4096)
        .time_to_live(Duration::from_secs(30))
        .build()
}

/// Looks up what the action's connector says it lacks, with the credential
/// the agent's binding would choose for the action as parsed so far.
pub async fn enrich(
    env: &Env,
    pinned: &Pinned,
    agent: &AgentPath,
    target: &Target,
    head: &Head,
    action: &mut Action,
) {
    let authority =
        super::headers::authority_for_uri(&head.host, head.port, target.tls_name.is_some());
    let authority = authority.as_str();
    let specs = std::mem::take(&mut action.enrich);
    for spec in &specs {
        let scheme = if target.tls_name.is_some() {
            "https"
        } else {
            "http"
        };
        let key = format!("{}|{}|{}", agent.chain_display(), authority, spec.path);
        let chosen = credential_plan::choose(
            pinned,
            agent.agent(),
            action.connector.as_deref(),
            &head.host,
            &action.name,
            &action.params,
        );
        let body = match env.enrich_cache.get(&key) {
            Some(b) => b,
            None => match fetch(
                env,
                agent,
                target,
                scheme,
                authority,
                &spec.path,
                chosen.as_ref(),
            )
            .await
            {
                Ok(b) => {
                    env.enrich_cache.insert(key, b.clone());
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
    env: &Env,
    agent: &AgentPath,
    target: &Target,
    scheme: &str,
    authority: &str,
    path: &str,
    chosen: Option<&credential_plan::Chosen<'_>>,
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
    let injected = inject::inject(env, agent.agent(), chosen, &mut headers, &mut uri).await?;
    if injected.is_some() {
        redact::ask_identity(&mut headers);
    }
    let mut req = Request::get(uri)
        .body(body::empty())
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = headers;
    let client = env.pools.client(target, &env.upstream_tls);
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("upstream answered {}", resp.status()));
    }
    if let Some(echoes) = &injected
        && let Some(why) = redact::unscrubbable(resp.headers(), echoes)
    {
        return Err(why);
    }
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
    let collected = limited.collect().await.map_err(|e| e.to_string())?;
    // What is read from it becomes an action's params, which the trail keeps and a refusal
    // shows the agent: an echo of the credential goes no further than here.
    Ok(match injected {
        Some(echoes) => redact::scrub(collected.to_bytes(), &echoes),
        None => collected.to_bytes(),
    })
}
