//! The daemon's side of the kill switch: the kernel steps (see
//! `killswitch`), then cutting live connections and pending approvals,
//! persisting the mark and auditing it.
mod connector;
mod error;

use serde::{Deserialize, Serialize};

pub use self::{
    connector::{connector_blocked, cut_connector, restore_connector},
    error::{KillFailed, Unrecorded},
};
use super::Shared;
pub use super::kill_marks::KillMark;
use super::kill_marks::Mark;
use crate::killswitch::{self, KillReport, Scope};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillOutcome {
    #[serde(flatten)]
    pub report: KillReport,
    pub connections_cut: usize,
    pub approvals_denied: usize,
}

/// Kills, then records. An error after the kernel step says the agent is
/// killed all the same (`KillFailed::KilledUnrecorded`): the caller must
/// not report success, since the kill may not survive a restart or may be
/// missing from the trail.
pub async fn kill(
    d: &Shared,
    scope: Scope,
    reason: &str,
    by: &str,
) -> Result<KillOutcome, KillFailed> {
    let report = {
        let d2 = d.clone();
        let s2 = scope.clone();
        tokio::task::spawn_blocking(move || {
            d2.maps
                .with_kill_map(|m| killswitch::kill(d2.registry.tree(), m, &s2))
        })
        .await??
    };
    let covers = |a: &crate::cgroup::AgentPath| scope.covers(&a.chain, &a.instances);
    let connections_cut = d.conns.cancel_where(covers);
    super::jit::revoke_where(d, covers, "killed");
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
        tokio::task::spawn_blocking(move || d2.kills.put(&key, Mark::Kill(mark)))
    };
    let rec = record(cordon_audit::EventKind::Kill, &scope, reason, by);
    let (audited, persisted) = tokio::join!(crate::request::record::append(&d.audit, rec), persist);
    tracing::warn!(scope = %scope.key(), %reason, %by, frozen = ?report.frozen, connections_cut, "agent killed");
    let missing = unrecorded(audited, persisted);
    if !missing.is_empty() {
        let e = KillFailed::KilledUnrecorded {
            scope: scope.key(),
            missing,
        };
        tracing::error!("{e}");
        return Err(e);
    }
    Ok(KillOutcome {
        report,
        connections_cut,
        approvals_denied,
    })
}

/// What of a kill's two records (audit, mark on disk) was not written.
fn unrecorded(
    audited: Result<u64, cordon_audit::AuditError>,
    persisted: Result<Result<(), super::kill_marks::KillMarksError>, tokio::task::JoinError>,
) -> Vec<Unrecorded> {
    let mut missing = Vec::new();
    match persisted {
        Ok(Ok(())) => {}
        Ok(Err(e)) => missing.push(Unrecorded::Mark(e)),
        Err(e) => missing.push(Unrecorded::MarkTask(e)),
    }
    if let Err(e) = audited {
        missing.push(Unrecorded::Audit(e));
    }
    missing
}

/// Resumes. Lifting a kill is the unsafe direction, so its record is
/// written first and a resume that cannot be recorded does not happen; if
/// the kernel step then fails, the trail over-reports (a resume that did
/// not take), never under-reports.
pub async fn resume(d: &Shared, scope: Scope, by: &str) -> Result<KillReport, KillFailed> {
    let rec = record(cordon_audit::EventKind::Resume, &scope, "", by);
    if let Err(source) = crate::request::record::append(&d.audit, rec).await {
        return Err(KillFailed::ResumeUnaudited {
            scope: scope.key(),
            source: Box::new(source),
        });
    }
    let d2 = d.clone();
    let s2 = scope.clone();
    let report = tokio::task::spawn_blocking(move || {
        d2.maps
            .with_kill_map(|m| killswitch::resume(d2.registry.tree(), m, &s2))
    })
    .await??;
    // The kill revoked their credentials; the placeholders are derived, so
    // the resumed instances get back the very keys they hold.
    let covers = |a: &crate::cgroup::AgentPath| scope.covers(&a.chain, &a.instances);
    super::jit::restore_where(d, covers);
    // Resuming an agent also lifts kills recorded for its instances. A mark
    // left on disk re-kills at the next start (the safe direction), but the
    // operator is told: the command did not fully do what it said.
    let mut kept = None;
    for (key, mark) in d.kills.list() {
        if !lifted_by(&scope, &key, &mark) {
            continue;
        }
        if let Mark::ConnectorCut(cut) = &mark {
            d.jit.restore_connector(&cut.agent, &cut.connector);
        }
        if let Err(source) = d.kills.del(&key) {
            tracing::error!("resumed {key}, but lifting its mark failed: {source}");
            kept.get_or_insert(KillFailed::ResumedMarkKept {
                scope: key,
                source: Box::new(source),
            });
        }
    }
    kept.map_or(Ok(report), Err)
}

/// Whether resuming `scope` lifts the mark stored under `key`.
fn lifted_by(scope: &Scope, key: &str, mark: &Mark) -> bool {
    match (scope, mark) {
        // `resume --all` lifts connector cuts too; naming an agent lifts
        // its kills, and a cut only by `resume --connector`.
        (Scope::All, _) => true,
        (_, Mark::ConnectorCut(_)) => false,
        (scope, Mark::Kill(_)) => lifted_kill(scope, key),
    }
}

fn lifted_kill(scope: &Scope, key: &str) -> bool {
    match scope {
        Scope::All => true,
        Scope::Agent(a) => key == a || key.starts_with(&format!("{a}/")),
        _ => key == scope.key(),
    }
}

/// Re-applies persisted kills at start: a restart never un-kills an agent.
pub async fn reapply(d: &Shared) {
    for (key, mark) in d.kills.list() {
        let mark = match mark {
            Mark::Kill(mark) => mark,
            // Every request checks the cut; the credential cache is fenced
            // too, so nothing is minted for it (there is nothing to revoke
            // yet: minted credentials do not outlive the daemon).
            Mark::ConnectorCut(cut) => {
                d.jit.cut_connector(&cut.agent, &cut.connector).await;
                continue;
            }
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
    d.kills.list().iter().any(
        |(_, mark)| matches!(mark, Mark::Kill(m) if m.scope.covers(&agent.chain, &agent.instances)),
    )
}

/// The `agent.kill` / `agent.resume` record of a scope; `by` is kept as the
/// approver, like every operator decision.
fn record(
    kind: cordon_audit::EventKind,
    scope: &Scope,
    reason: &str,
    by: &str,
) -> cordon_audit::NewRecord {
    cordon_audit::NewRecord {
        agent: Some(scope.key()),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        approver: Some(by.to_string()),
        ..cordon_audit::NewRecord::new(kind)
    }
}
