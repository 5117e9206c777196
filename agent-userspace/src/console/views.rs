//! What the console's read-only views show, built from the daemon's own
//! state and the same functions the CLI's operations use: `ps`, the
//! pending approvals, the grants, the policy in force and its history,
//! vault names and bindings (never values), and `policy suggest`.
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::history;
use crate::{control, daemon::Shared};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Failed(String),
}

impl ViewError {
    pub fn status(&self) -> u16 {
        match self {
            ViewError::BadRequest(_) => 400,
            ViewError::Failed(_) => 500,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ViewError> + Send + 'static,
) -> Result<T, ViewError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ViewError::Failed(e.to_string()))?
}

fn reply_body(r: control::proto::Reply) -> Result<Value, ViewError> {
    if r.ok {
        Ok(r.body)
    } else {
        Err(ViewError::Failed(r.error.unwrap_or_default()))
    }
}

/// `cordon ps`, as the control socket answers it (it reads sysfs).
pub async fn agents(d: &Shared) -> Result<Value, ViewError> {
    let d = d.clone();
    blocking(move || reply_body(control::ops::ps(&d))).await
}

/// Pending approvals as `cordon approvals` lists them: what is asked, the
/// rule, the credential that would be injected (its name), how long held.
pub fn approvals(d: &Shared) -> Value {
    let now = Utc::now();
    let rows: Vec<Value> = d
        .approvals
        .list()
        .iter()
        .map(|i| control::grant_ops::listed(i, now))
        .collect();
    Value::Array(rows)
}

/// Standing grants in force, as `cordon grants` lists them.
pub fn grants(d: &Shared) -> Value {
    serde_json::to_value(d.grants.list(Utc::now())).unwrap_or(Value::Null)
}

/// The policy in force, each named agent's mode, and the reload history
/// with the version in force at `at`.
pub async fn policy(d: &Shared, at: Option<DateTime<Utc>>) -> Result<Value, ViewError> {
    let snapshot = d.policy.engine().snapshot();
    let (files, agents) = match &snapshot {
        Some(set) => (
            set.files()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            set.agents()
                .iter()
                .map(|a| json!({"agent": a, "mode": set.mode_for(a).name()}))
                .collect::<Vec<_>>(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    d.audit.settled().await;
    let db = d.audit.database().clone();
    let hist = blocking(move || {
        let mut recs = Vec::new();
        for r in cordon_audit::iter_from(&db, 1).map_err(|e| ViewError::Failed(e.to_string()))? {
            recs.push(r.map_err(|e| ViewError::Failed(e.to_string()))?);
        }
        Ok(history::fold(&recs, at))
    })
    .await?;
    Ok(json!({
        "version": d.policy.version(),
        "loaded": snapshot.is_some(),
        "directory": d.cfg.policies,
        "files": files,
        "agents": agents,
        "history": hist.changes,
        "at": at.map(|t| json!({"time": t, "version": hist.at})),
    }))
}

/// Vault entries (names, kinds, use; the vault never returns values) and
/// every binding of every agent (`vault_view`).
pub async fn vault(d: &Shared) -> Result<Value, ViewError> {
    let vault = d.vault.clone();
    let entries =
        blocking(move || vault.list().map_err(|e| ViewError::Failed(e.to_string()))).await?;
    let set = d.policy.engine().snapshot();
    Ok(super::vault_view::view(&entries, set.as_deref()))
}

/// `cordon policy suggest --agent NAME`, over the daemon's own trail and
/// the policy in force (the same pure function the CLI runs).
pub async fn suggest(d: &Shared, agent: String) -> Result<Value, ViewError> {
    if agent.trim().is_empty() {
        return Err(ViewError::BadRequest("name an agent".into()));
    }
    d.audit.settled().await;
    let db = d.audit.database().clone();
    let current = d.policy.engine().snapshot();
    let who = agent.clone();
    let text = blocking(move || {
        let mut recs = Vec::new();
        for r in cordon_audit::iter_from(&db, 1).map_err(|e| ViewError::Failed(e.to_string()))? {
            recs.push(r.map_err(|e| ViewError::Failed(e.to_string()))?);
        }
        crate::suggest::suggest(&crate::suggest::Input {
            agent: &who,
            records: &recs,
            since: None,
            current: current.as_deref(),
        })
        .map_err(|e| ViewError::Failed(e.to_string()))
    })
    .await?;
    Ok(json!({ "agent": agent, "proposal": text }))
}
