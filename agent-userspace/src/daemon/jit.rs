//! The daemon's side of just-in-time credentials: one `JitCredentials`
//! built at start, AWS placeholders issued at `cordon run`, and every
//! instance's tokens revoked (placeholders and sessions dropped) when it
//! exits, is terminated or is killed.
use std::sync::Arc;

use anyhow::Context;
use cordon_jit::{InstanceRevoked, JitCredentials};
use cordon_tls::{UpstreamAlpn, UpstreamTls};

use super::Shared;
use crate::{cgroup::AgentPath, config::DaemonConfig, proxy::env::instance_of};

/// The issuers are those of `[credentials]`, trusted through the same
/// roots as every upstream.
pub fn build(cfg: &DaemonConfig, upstream: &UpstreamTls) -> anyhow::Result<Arc<JitCredentials>> {
    let tls = upstream.client_config(UpstreamAlpn::Http1Only);
    let jit = JitCredentials::new(&tls, &cfg.github_api, &cfg.sts_endpoint)
        .context("configuring just-in-time credentials ([credentials] in cordon.toml)")?;
    Ok(Arc::new(jit))
}

/// The AWS placeholder variables for a new instance, when its policy binds
/// an `aws-role` entry (SDKs then sign with keys only Cordon can verify).
pub fn aws_env(d: &Shared, path: &AgentPath) -> anyhow::Result<Vec<(String, String)>> {
    if !binds_aws_role(d, path.agent()) {
        return Ok(Vec::new());
    }
    let placeholder = d
        .jit
        .aws_placeholders
        .issue(&instance_of(path))
        .context("issuing the instance's AWS placeholder keys")?;
    Ok(placeholder.env())
}

/// Whether any binding of `agent`'s policy names an `aws-role` vault entry
/// (the vault's listing reads kinds without decrypting anything).
fn binds_aws_role(d: &Shared, agent: &str) -> bool {
    let Some(set) = d.policy.engine().snapshot() else {
        return false;
    };
    let entries: Vec<String> = set
        .bindings_for(agent)
        .values()
        .flat_map(|b| b.iter().map(|b| b.entry.clone()).collect::<Vec<_>>())
        .collect();
    if entries.is_empty() {
        return false;
    }
    match d.vault.list() {
        Ok(list) => list
            .iter()
            .any(|i| i.kind == cordon_vault::KIND_AWS_ROLE && entries.contains(&i.name)),
        Err(e) => {
            // Without placeholders the agent's AWS requests are refused
            // (nothing to verify them with): fail closed, and say why.
            tracing::warn!(agent, "listing the vault for aws-role bindings: {e}");
            false
        }
    }
}

/// Revokes `path`'s credentials in the background; `why` is how it ended.
pub fn revoke(d: &Shared, path: &AgentPath, why: &'static str) {
    let jit = d.jit.clone();
    let instance = instance_of(path);
    tokio::spawn(async move {
        let done = jit.revoke_instance(&instance).await;
        log(&instance, why, &done);
    });
}

/// Revokes every live instance `covers` selects (a kill).
pub fn revoke_where(d: &Shared, covers: impl Fn(&AgentPath) -> bool, why: &'static str) {
    for (_, path) in d.registry.snapshot() {
        if covers(&path) {
            revoke(d, &path, why);
        }
    }
}

fn log(instance: &cordon_jit::InstanceId, why: &str, done: &InstanceRevoked) {
    if done.github.revoked == 0 && done.github.failed.is_empty() && done.aws_sessions_dropped == 0 {
        return;
    }
    tracing::info!(
        %instance,
        why,
        github_tokens_revoked = done.github.revoked,
        github_revocations_failed = done.github.failed.len(),
        aws_sessions_dropped = done.aws_sessions_dropped,
        "instance credentials revoked"
    );
}
