//! `cordon kill --connector C AGENT`: that connector's actions are refused
//! for the agent, which keeps running. Recorded like any kill: a mark on
//! disk (so a restart keeps the cut) and an `agent.kill` record naming the
//! connector; `resume --connector` writes `agent.resume` the same way.
//!
//! The cut also withdraws what was minted for the connector: the agent's
//! (and its sub-agents') GitHub installation tokens for it are revoked at
//! GitHub and its AWS sessions dropped, before the command returns, and
//! nothing is minted for it until the resume (a `vault.revoke` record says
//! what was withdrawn).
use cordon_jit::InstanceRevoked;
use serde_json::{Map, Value};

use super::{KillFailed, Unrecorded};
use crate::{
    daemon::{
        Shared,
        kill_marks::{ConnectorCut, Mark},
    },
    request::record::append,
};

pub fn connector_key(agent: &str, connector: &str) -> String {
    format!("connector:{agent}:{connector}")
}

pub fn connector_blocked(d: &Shared, agent: &crate::cgroup::AgentPath, connector: &str) -> bool {
    agent
        .chain
        .iter()
        .any(|a| d.kills.contains(&connector_key(a, connector)))
}

/// Cuts the connector and withdraws its minted credentials (what was
/// withdrawn is returned). Like a kill, the cut is in force (in memory)
/// before it is written; an error says so and names what was not recorded.
pub async fn cut_connector(
    d: &Shared,
    agent: &str,
    connector: &str,
    reason: &str,
    by: &str,
) -> Result<InstanceRevoked, KillFailed> {
    let key = connector_key(agent, connector);
    let mark = Mark::ConnectorCut(ConnectorCut {
        agent: agent.to_string(),
        connector: connector.to_string(),
        reason: reason.to_string(),
        by: by.to_string(),
        at: Some(chrono::Utc::now()),
    });
    let persist = {
        let d2 = d.clone();
        tokio::task::spawn_blocking(move || d2.kills.put(&key, mark))
    };
    let rec = record(cordon_audit::EventKind::Kill, agent, connector, reason, by);
    let (audited, persisted) = tokio::join!(append(&d.audit, rec), persist);
    tracing::warn!(%agent, %connector, %reason, %by, "connector cut");
    let mut missing = super::unrecorded(audited, persisted);
    // Revoked whether or not the cut was recorded: it is in force either way.
    let withdrawn = d.jit.cut_connector(agent, connector).await;
    if let Some(rec) = crate::daemon::jit::cut_record(agent, connector, &withdrawn) {
        tracing::info!(%agent, %connector, tokens = withdrawn.github.revoked, sessions = withdrawn.aws_sessions_dropped, "connector credentials revoked");
        if let Err(e) = append(&d.audit, rec).await {
            missing.push(Unrecorded::Revocation(e));
        }
    }
    if missing.is_empty() {
        return Ok(withdrawn);
    }
    let e = KillFailed::ConnectorCutUnrecorded {
        agent: agent.to_string(),
        connector: connector.to_string(),
        missing,
    };
    tracing::error!("{e}");
    Err(e)
}

/// Restores the connector; recorded first, and not restored when the
/// record cannot be written (the same rule as `resume`).
pub async fn restore_connector(
    d: &Shared,
    agent: &str,
    connector: &str,
    by: &str,
) -> Result<(), KillFailed> {
    let scope = format!("connector {connector} of {agent}");
    let rec = record(cordon_audit::EventKind::Resume, agent, connector, "", by);
    if let Err(source) = append(&d.audit, rec).await {
        return Err(KillFailed::ResumeUnaudited {
            scope,
            source: Box::new(source),
        });
    }
    let d2 = d.clone();
    let key = connector_key(agent, connector);
    let lifted = tokio::task::spawn_blocking(move || d2.kills.del(&key)).await?;
    // The mark is lifted in memory even when its file was not rewritten, so
    // requests go out again: they mint afresh (the cut left nothing behind).
    d.jit.restore_connector(agent, connector);
    match lifted {
        Ok(()) => Ok(()),
        Err(source) => Err(KillFailed::ResumedMarkKept {
            scope,
            source: Box::new(source),
        }),
    }
}

fn record(
    kind: cordon_audit::EventKind,
    agent: &str,
    connector: &str,
    reason: &str,
    by: &str,
) -> cordon_audit::NewRecord {
    let mut params = Map::new();
    params.insert("connector".into(), Value::from(connector));
    cordon_audit::NewRecord {
        agent: Some(agent.to_string()),
        connector: Some(connector.to_string()),
        params,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        approver: Some(by.to_string()),
        ..cordon_audit::NewRecord::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_cut_is_an_agent_kill_record_naming_the_connector() {
        let rec = record(
            cordon_audit::EventKind::Kill,
            "bot",
            "github",
            "leaking",
            "root",
        );
        assert_eq!(rec.kind, cordon_audit::EventKind::Kill);
        assert_eq!(rec.agent.as_deref(), Some("bot"));
        assert_eq!(rec.connector.as_deref(), Some("github"));
        assert_eq!(rec.params["connector"], "github");
        assert_eq!(
            (rec.reason.as_deref(), rec.approver.as_deref()),
            (Some("leaking"), Some("root"))
        );
        let back = record(cordon_audit::EventKind::Resume, "bot", "github", "", "root");
        assert_eq!(back.reason, None);
    }
}
