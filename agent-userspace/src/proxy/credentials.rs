//! Credential injection, after policy has allowed a request: the agent's
//! own auth is replaced by the real secret from the vault, bound to this
//! agent by policy. Agents only ever hold placeholders.
use std::sync::Arc;

use cordon_connectors::Presented;
use cordon_vault::Secret;
use http::{HeaderMap, Uri};

use crate::{cgroup::AgentPath, daemon::Shared};

/// The secret that went upstream, kept only to redact echoes of it.
pub type Injected = Option<Arc<Secret>>;

pub async fn inject(
    d: &Shared,
    agent: &AgentPath,
    connector: Option<&str>,
    host: &str,
    headers: &mut HeaderMap,
    uri: &mut Uri,
) -> Result<Injected, String> {
    let Some(cname) = connector else {
        return Ok(None);
    };
    let connectors = d.connectors.load();
    let Some(spec) = connectors
        .connector(cname)
        .and_then(|c| c.credential_for_host(host))
    else {
        return Ok(None);
    };
    if matches!(spec.inspect(headers, uri), Presented::Foreign) {
        return Err(format!(
            "the request carries a {cname} credential Cordon did not issue; agents use placeholders and Cordon injects the real one"
        ));
    }
    let Some(entry) = binding(d, agent, cname) else {
        return Ok(None);
    };
    let vault = d.vault.clone();
    let e2 = entry.clone();
    let secret = tokio::task::spawn_blocking(move || vault.get(&e2))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("credential {entry} for {cname} is unavailable: {e}"))?;
    spec.apply(headers, uri, secret.expose())
        .map_err(|e| format!("applying the {cname} credential: {e}"))?;
    let vault = d.vault.clone();
    let who = agent.agent().to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = vault.mark_used(&entry, &who) {
            tracing::debug!("vault usage not recorded: {e}");
        }
    });
    Ok(Some(Arc::new(secret)))
}

/// A request that already carries a real-looking credential Cordon did not
/// issue is refused before it is decided (agents only hold placeholders).
pub fn foreign_credential(
    d: &Shared,
    connector: Option<&str>,
    host: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<String> {
    let cname = connector?;
    let connectors = d.connectors.load();
    let spec = connectors.connector(cname)?.credential_for_host(host)?;
    matches!(spec.inspect(headers, uri), Presented::Foreign).then(|| {
        format!(
            "the request carries a {cname} credential Cordon did not issue; agents use placeholders and Cordon injects the real one"
        )
    })
}

/// Removes the agent's own credential for a connector (the headers its
/// scheme uses), for `foreign_credentials = "strip"`.
pub fn strip(d: &Shared, connector: Option<&str>, host: &str, headers: &mut HeaderMap) {
    headers.remove(http::header::AUTHORIZATION);
    let Some(cname) = connector else { return };
    let connectors = d.connectors.load();
    if let Some(spec) = connectors
        .connector(cname)
        .and_then(|c| c.credential_for_host(host))
        && let cordon_connectors::CredentialScheme::Header { name } = spec.scheme()
    {
        headers.remove(name.as_str());
    }
}

/// The vault entry policy binds to this agent for a connector. The acting
/// agent's own binding counts; a sub-agent does not inherit its parent's
/// keys (delegation must not widen what a child can sign as).
fn binding(d: &Shared, agent: &AgentPath, connector: &str) -> Option<String> {
    let set = d.policy.engine().snapshot()?;
    set.credentials_for(agent.agent()).get(connector).cloned()
}

/// Placeholder variables `cordon run` gives an agent for its bindings, so
/// SDKs that insist on a key start normally.
pub fn placeholders(d: &Shared, agent: &str) -> Vec<(String, String)> {
    let Some(set) = d.policy.engine().snapshot() else {
        return vec![];
    };
    let connectors = d.connectors.load();
    let mut out = Vec::new();
    for cname in set.credentials_for(agent).keys() {
        if let Some(c) = connectors.connector(cname) {
            for var in c.placeholder_env() {
                out.push((var.clone(), c.placeholder_value()));
            }
        }
    }
    out
}
