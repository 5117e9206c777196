//! The daemon's side of the kill switch: the kernel steps (see
//! `killswitch`), then cutting live connections and pending approvals,
//! persisting the mark and auditing it.
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::killswitch::{self, KillReport, Scope};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillMark {
    pub scope: Scope,
    pub reason: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillOutcome {
    #[serde(flatten)]
    pub report: KillReport,
    pub connections_cut: usize,
    pub approvals_denied: usize,
}

pub async fn kill(d: &Shared, scope: Scope, reason: &str, by: &str) -> Result<KillOutcome, String> {
    let report = {
        let d2 = d.clone();
        let s2 = scope.clone();
        tokio::task::spawn_blocking(move || {
            d2.maps
                .with_kill_map(|m| killswitch::kill(d2.registry.tree(), m, &s2))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    let covers = |a: &crate::cgroup::AgentPath| scope.covers(&a.chain, &a.instances);
    let connections_cut = d.conns.cancel_where(covers);
    if let Scope::Agent(a) = &scope {
        d.pools.forget_chain(a);
    }
    let approvals_denied = d
        .approvals
        .deny_where(covers, by, &format!("agent killed: {reason}"));
    let mark = KillMark {
        scope: scope.clone(),
        reason: reason.to_string(),
        by: by.to_string(),
        at: chrono::Utc::now(),
    };
    // The kill is in force; persisting it (a small file, fsynced) and
    // auditing it (an fsync of the audit log) run side by side, and the
    // file write off the runtime threads, so the operator's command returns
    // after the slower of the two rather than their sum.
    let persist = {
        let d2 = d.clone();
        let key = scope.key();
        let value = serde_json::to_string(&mark).unwrap_or_default();
        tokio::task::spawn_blocking(move || d2.kills.put(&key, &value))
    };
    let ((), persisted) = tokio::join!(
        audit(d, cordon_audit::EventKind::Kill, &scope, reason, by),
        persist
    );
    let failure = match persisted {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = failure {
        tracing::error!(
            "kill of {} is in force but could not be persisted: {e}",
            scope.key()
        );
    }
    tracing::warn!(scope = %scope.key(), %reason, %by, frozen = ?report.frozen, connections_cut, "agent killed");
    Ok(KillOutcome {
        report,
        connections_cut,
        approvals_denied,
    })
}

pub async fn resume(d: &Shared, scope: Scope, by: &str) -> Result<KillReport, String> {
    let d2 = d.clone();
    let s2 = scope.clone();
    let report = tokio::task::spawn_blocking(move || {
        d2.maps
            .with_kill_map(|m| killswitch::resume(d2.registry.tree(), m, &s2))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    // Resuming an agent also lifts kills recorded for its instances.
    for (key, _) in d.kills.list() {
        let lifted = match &scope {
            Scope::All => true,
            Scope::Agent(a) => key == *a || key.starts_with(&format!("{a}/")),
            _ => key == scope.key(),
        };
        if lifted && let Err(e) = d.kills.del(&key) {
            tracing::error!("resumed {key}, but lifting its mark failed: {e}");
        }
    }
    audit(d, cordon_audit::EventKind::Resume, &scope, "", by).await;
    Ok(report)
}

/// Re-applies persisted kills at start: a restart never un-kills an agent.
pub async fn reapply(d: &Shared) {
    for (key, value) in d.kills.list() {
        let Ok(mark) = serde_json::from_str::<KillMark>(&value) else {
            tracing::error!(
                "unreadable kill mark for {key}: it stays recorded, re-kill it by hand"
            );
            continue;
        };
        let d2 = d.clone();
        let scope = mark.scope.clone();
        let r = tokio::task::spawn_blocking(move || {
            d2.maps
                .with_kill_map(|m| killswitch::kill(d2.registry.tree(), m, &scope))
        })
        .await;
        match r {
            Ok(Ok(rep)) => {
                tracing::warn!(scope = %key, frozen = ?rep.frozen, "kill re-applied at start")
            }
            Ok(Err(e)) => {
                tracing::info!(scope = %key, "kill mark kept, nothing to freeze now: {e}")
            }
            Err(e) => tracing::error!(scope = %key, "re-applying kill: {e}"),
        }
    }
}

/// Is this agent (or an ancestor run) under a kill mark?
pub fn is_killed(d: &Shared, agent: &crate::cgroup::AgentPath) -> bool {
    d.kills.list().iter().any(|(_, v)| {
        serde_json::from_str::<KillMark>(v)
            .is_ok_and(|m| m.scope.covers(&agent.chain, &agent.instances))
    })
}

async fn audit(d: &Shared, kind: cordon_audit::EventKind, scope: &Scope, reason: &str, by: &str) {
    let rec = cordon_audit::NewRecord {
        agent: Some(scope.key()),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        approver: Some(by.to_string()),
        ..cordon_audit::NewRecord::new(kind)
    };
    if let Err(e) = d.audit.append(rec).await {
        tracing::error!("audit of {} failed: {e}", scope.key());
    }
}

/// `cordon kill --connector C AGENT`: that connector's actions are refused
/// for the agent, which keeps running.
pub fn connector_key(agent: &str, connector: &str) -> String {
    format!("connector:{agent}:{connector}")
}

pub fn connector_blocked(d: &Shared, agent: &crate::cgroup::AgentPath, connector: &str) -> bool {
    agent
        .chain
        .iter()
        .any(|a| d.kills.contains(&connector_key(a, connector)))
}
