//! Policy and connector reloads, from `cordon policy reload`, SIGHUP or a
//! change on disk. The new set is fully validated before it replaces the
//! old; a broken file leaves the previous policy in force and the error
//! (file:line:col) is logged, returned and audited.
use std::{path::Path, time::Duration};

use super::Shared;

/// A validated policy and connector set, not yet in force.
struct Staged {
    set: cordon_policy::PolicySet,
    connectors: Option<cordon_connectors::ConnectorSet>,
}

/// Validates, records, then swaps in. A new policy changes what every
/// agent may do, so it goes into force only once the trail holds the
/// record of it: when that record cannot be written, the previous policy
/// stays and the reload fails.
pub async fn reload_all(d: &Shared, trigger: &str) -> Result<String, String> {
    let staged = stage(d);
    let rec = cordon_audit::NewRecord {
        action: Some("policy.reload".into()),
        decision: Some(if staged.is_ok() {
            cordon_audit::Decision::Allow
        } else {
            cordon_audit::Decision::Deny
        }),
        reason: Some(match &staged {
            Ok(s) => format!("{trigger}: policy version {} in force", s.set.version()),
            Err(e) => format!("{trigger}: rejected, previous policy stays in force: {e}"),
        }),
        policy_version: Some(match &staged {
            Ok(s) => s.set.version().to_string(),
            Err(_) => d.policy.version(),
        }),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::PolicyReload)
    };
    let recorded = d.audit.append(&rec).await;
    let result = match (staged, recorded) {
        (Ok(s), Ok(_)) => {
            let version = s.set.version().to_string();
            d.policy.engine().install(s.set);
            if let Some(c) = s.connectors {
                d.connectors.store(std::sync::Arc::new(c));
            }
            Ok(version)
        }
        (Ok(s), Err(e)) => Err(format!(
            "policy version {} was not put in force: its audit record could not be written ({e})",
            s.set.version()
        )),
        (Err(e), recorded) => {
            if let Err(ae) = recorded {
                tracing::error!("audit of a rejected policy reload failed: {ae}");
            }
            Err(e)
        }
    };
    match &result {
        Ok(v) => tracing::info!(version = %v, %trigger, "policy reloaded"),
        Err(e) => {
            tracing::error!(%trigger, "policy reload rejected, the previous policy stays in force: {e}")
        }
    }
    result
}

fn stage(d: &Shared) -> Result<Staged, String> {
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
    Ok(Staged { set, connectors })
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
