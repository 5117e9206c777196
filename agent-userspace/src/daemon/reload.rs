//! Policy and connector reloads, from `cordon policy reload`, SIGHUP or a
//! change on disk. The new set is fully validated before it replaces the
//! old; a broken file leaves the previous policy in force and the error
//! (file:line:col) is logged, returned and audited.
use std::{path::Path, time::Duration};

use super::Shared;

pub async fn reload_all(d: &Shared, trigger: &str) -> Result<String, String> {
    let result = reload_inner(d);
    let rec = cordon_audit::NewRecord {
        action: Some("policy.reload".into()),
        decision: Some(if result.is_ok() {
            cordon_audit::Decision::Allow
        } else {
            cordon_audit::Decision::Deny
        }),
        reason: Some(match &result {
            Ok(v) => format!("{trigger}: policy version {v} in force"),
            Err(e) => format!("{trigger}: rejected, previous policy stays in force: {e}"),
        }),
        policy_version: Some(d.policy.version()),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::PolicyReload)
    };
    if let Err(e) = d.audit.append(rec).await {
        tracing::error!("audit of a policy reload failed: {e}");
    }
    match &result {
        Ok(v) => tracing::info!(version = %v, %trigger, "policy reloaded"),
        Err(e) => {
            tracing::error!(%trigger, "policy reload rejected, the previous policy stays in force: {e}")
        }
    }
    result
}

fn reload_inner(d: &Shared) -> Result<String, String> {
    let dir = &d.cfg.policies;
    super::strict_modes::check_tree(dir).map_err(|e| e.to_string())?;
    let connectors_dir = dir.join("connectors");
    // Validate both before swapping either.
    let connectors = if connectors_dir.exists() {
        Some(
            cordon_connectors::ConnectorSet::load_dir(&connectors_dir)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let set = cordon_policy::PolicySet::load_dir(dir).map_err(|e| e.to_string())?;
    let version = set.version().to_string();
    d.policy.engine().install(set);
    if let Some(c) = connectors {
        d.connectors.store(std::sync::Arc::new(c));
    }
    Ok(version)
}

/// Watches the policy directory (polling mtimes: no extra dependency, and
/// it works on every filesystem) and reloads on change.
pub async fn watch(d: Shared) {
    let mut last = fingerprint(&d.cfg.policies);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let now = fingerprint(&d.cfg.policies);
        if now != last {
            last = now;
            // Editors write in several steps; let the file settle.
            tokio::time::sleep(Duration::from_millis(150)).await;
            last = fingerprint(&d.cfg.policies).max(last);
            let _ = reload_all(&d, "file change").await;
        }
    }
}

fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    visit(dir, &mut |p, m| {
        p.hash(&mut h);
        m.len().hash(&mut h);
        m.modified().ok().hash(&mut h);
    });
    h.finish()
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if let Ok(m) = e.metadata() {
            if m.is_dir() {
                visit(&p, f);
            } else {
                f(&p, &m);
            }
        }
    }
}
