//! The daemon's side of just-in-time credentials: one `JitCredentials`
//! built at start, AWS placeholders issued at `cordon run`, and every
//! instance's tokens revoked (placeholders and sessions dropped) when it
//! exits, is terminated or is killed.
use std::{
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::Arc,
};

use anyhow::Context;
use cordon_audit::{EventKind, NewRecord};
use cordon_jit::{InstanceRevoked, JitCredentials, aws::AwsPlaceholders};
use cordon_tls::{UpstreamAlpn, UpstreamTls};
use serde_json::json;
use zeroize::Zeroizing;

use super::Shared;
use crate::{cgroup::AgentPath, config::DaemonConfig, proxy::env::instance_of};

/// The issuers are those of `[credentials]`, trusted through the same
/// roots as every upstream.
pub fn build(cfg: &DaemonConfig, upstream: &UpstreamTls) -> anyhow::Result<Arc<JitCredentials>> {
    let tls = upstream.client_config(UpstreamAlpn::Http1Only);
    let mut jit = JitCredentials::new(&tls, &cfg.github_api, &cfg.sts_endpoint)
        .context("configuring just-in-time credentials ([credentials] in cordon.toml)")?;
    let key = placeholder_key(&cfg.paths.state_dir.join(PLACEHOLDER_KEY_FILE))?;
    jit.aws_placeholders = AwsPlaceholders::derived(&key);
    Ok(Arc::new(jit))
}

/// The key AWS placeholders are derived from, beside the vault key.
pub const PLACEHOLDER_KEY_FILE: &str = "jit-placeholder.key";

/// Reads the placeholder key, or makes one (32 bytes from the kernel,
/// 0600): kept so a restarted daemon gives running instances back the
/// keys they hold.
fn placeholder_key(path: &Path) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let len = f.metadata()?.len();
            anyhow::ensure!(
                len == 32,
                "{} holds {len} bytes, not 32: remove it to make a new one (running agents then need a restart for AWS)",
                path.display()
            );
            f.read_exact(&mut key[..])
                .with_context(|| format!("reading {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut key[..]))
                .context("reading the kernel's random generator")?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&key[..])
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    }
    Ok(key)
}

/// After a restart: the placeholders of the instances still running, so
/// their AWS requests verify again (the keys are derived, so the same).
pub fn restore(d: &Shared) {
    restore_where(d, |_| true);
}

/// The placeholders of the running instances `covers` selects (resumed
/// after a kill, or all of them after a restart).
pub fn restore_where(d: &Shared, covers: impl Fn(&AgentPath) -> bool) {
    for (_, path) in d.registry.snapshot() {
        if covers(&path)
            && binds_aws_role(d, path.agent())
            && let Err(e) = d.jit.aws_placeholders.issue(&instance_of(&path))
        {
            tracing::error!(agent = %path.chain_display(), "restoring AWS placeholder keys: {e}");
        }
    }
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
    let d = d.clone();
    let path = path.clone();
    tokio::spawn(async move {
        let instance = instance_of(&path);
        let done = d.jit.revoke_instance(&instance).await;
        if let Some(rec) = record(&path, why, &done) {
            tracing::info!(%instance, why, "instance credentials revoked");
            // The revocation happened either way; a failed append is
            // logged by `append` and leaves only the record missing.
            if crate::request::record::append(&d.audit, rec).await.is_err() {
                tracing::warn!(%instance, "the revocation is not in the trail");
            }
        }
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

/// The trail's record of a revocation (a `vault.change`: credentials minted
/// from vault entries ended), or `None` when the instance held none.
pub fn record(path: &AgentPath, why: &str, done: &InstanceRevoked) -> Option<NewRecord> {
    let params = revocation_params(why, done)?;
    Some(NewRecord {
        action: Some("vault.revoke".into()),
        params,
        ..crate::request::record::attributed(path, EventKind::VaultChange)
    })
}

/// `cordon kill --connector C AGENT` withdrew what `agent`'s instances held
/// for `C`: the same `vault.revoke` record, `ended = "connector_cut"`,
/// naming the connector; `None` when they held nothing for it.
pub fn cut_record(agent: &str, connector: &str, done: &InstanceRevoked) -> Option<NewRecord> {
    let mut params = revocation_params("connector_cut", done)?;
    params.insert("connector".into(), json!(connector));
    Some(NewRecord {
        agent: Some(agent.to_string()),
        connector: Some(connector.to_string()),
        action: Some("vault.revoke".into()),
        params,
        ..NewRecord::new(EventKind::VaultChange)
    })
}

/// How it ended and the counts (never a token); `None` when nothing was held.
fn revocation_params(
    why: &str,
    done: &InstanceRevoked,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    if done.github.revoked == 0 && done.github.failed.is_empty() && done.aws_sessions_dropped == 0 {
        return None;
    }
    let mut params = serde_json::Map::new();
    params.insert("ended".into(), json!(why));
    params.insert("github_tokens_revoked".into(), json!(done.github.revoked));
    params.insert(
        "github_revocations_failed".into(),
        json!(done.github.failed.len()),
    );
    params.insert(
        "aws_sessions_dropped".into(),
        json!(done.aws_sessions_dropped),
    );
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> AgentPath {
        AgentPath {
            chain: vec!["bot".into()],
            instances: vec!["7".into()],
        }
    }

    fn revoked(tokens: usize, sessions: usize) -> InstanceRevoked {
        InstanceRevoked {
            github: cordon_jit::github::tokens::Revoked {
                revoked: tokens,
                ..Default::default()
            },
            aws_sessions_dropped: sessions,
        }
    }

    #[test]
    fn the_placeholder_key_is_made_once_private_and_then_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(PLACEHOLDER_KEY_FILE);
        let first = placeholder_key(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(*placeholder_key(&p).unwrap(), *first);
        std::fs::write(&p, b"short").unwrap();
        assert!(
            placeholder_key(&p).is_err(),
            "a damaged key is an error, not replaced"
        );
    }

    #[test]
    fn an_instance_that_held_nothing_leaves_no_record() {
        assert!(record(&path(), "exited", &revoked(0, 0)).is_none());
    }

    #[test]
    fn a_revocation_is_recorded_with_its_counts_and_how_the_instance_ended() {
        let rec = record(&path(), "killed", &revoked(2, 1)).unwrap();
        assert_eq!(rec.kind, EventKind::VaultChange);
        assert_eq!(rec.action.as_deref(), Some("vault.revoke"));
        assert_eq!(rec.instance.as_deref(), Some("7"));
        assert_eq!(rec.params["ended"], "killed");
        assert_eq!(rec.params["github_tokens_revoked"], 2);
        assert_eq!(rec.params["aws_sessions_dropped"], 1);
    }

    #[test]
    fn a_connector_cut_that_withdrew_credentials_is_recorded_naming_the_connector() {
        assert!(cut_record("bot", "github", &revoked(0, 0)).is_none());
        let rec = cut_record("bot", "github", &revoked(1, 0)).unwrap();
        assert_eq!(rec.action.as_deref(), Some("vault.revoke"));
        assert_eq!(
            (rec.agent.as_deref(), rec.connector.as_deref()),
            (Some("bot"), Some("github"))
        );
        assert_eq!(rec.params["ended"], "connector_cut");
        assert_eq!(rec.params["connector"], "github");
        assert_eq!(rec.params["github_tokens_revoked"], 1);
    }
}
