//! Operator operations on the control socket: kill switch, approvals, ps.
//! `server::dispatch` has already refused callers inside agent cgroups.

use serde_json::json;

use super::{
    proto::{Reply, Request},
    server::Caller,
};
use crate::{
    cgroup::{AgentPath, freeze},
    daemon::{Shared, approvals::Answer, kill},
    killswitch::{self, Scope},
};

fn scope(target: Option<String>, all: bool) -> Result<Scope, String> {
    match (target, all) {
        (_, true) => Ok(Scope::All),
        (Some(t), false) => Scope::parse(&t).map_err(|e| e.to_string()),
        (None, false) => Err("name an agent (AGENT or AGENT/ID) or pass --all".into()),
    }
}

fn who(caller: &Caller) -> String {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| caller.uid.to_string());
    format!("{name} (uid {}, pid {})", caller.uid, caller.pid)
}

pub async fn operator(d: &Shared, caller: &Caller, req: Request) -> Reply {
    operator_as(d, &who(caller), req).await
}

/// The operator operations for a caller already authorised, named `who` in
/// the trail: the control socket's peer, or a console session. Both paths
/// run this one function, so the console decides nothing on its own.
pub async fn operator_as(d: &Shared, who: &str, req: Request) -> Reply {
    let who = || who.to_string();
    match req {
        Request::Kill {
            target,
            all,
            reason,
            connector,
        } => {
            let scope = match scope(target, all) {
                Ok(s) => s,
                Err(e) => return Reply::err(e),
            };
            if let Some(c) = connector {
                let Scope::Agent(a) = &scope else {
                    return Reply::err("--connector takes one agent name");
                };
                return match kill::cut_connector(d, a, &c, &reason, &who()).await {
                    Ok(w) => Reply::ok(json!({
                        "connector_cut": c,
                        "agent": a,
                        "github_tokens_revoked": w.github.revoked,
                        "github_revocations_failed": w.github.failed.len(),
                        "aws_sessions_dropped": w.aws_sessions_dropped,
                    })),
                    Err(e) => Reply::err(e.to_string()),
                };
            }
            // An error may mean "killed, but not recorded": it is reported
            // as a failure, never as success (the message says it is killed).
            match kill::kill(d, scope, &reason, &who()).await {
                Ok(out) => Reply::ok(out),
                Err(e) => Reply::err(e.to_string()),
            }
        }
        Request::Resume {
            target,
            all,
            connector,
        } => {
            let scope = match scope(target, all) {
                Ok(s) => s,
                Err(e) => return Reply::err(e),
            };
            if let Some(c) = connector {
                let Scope::Agent(a) = &scope else {
                    return Reply::err("--connector takes one agent name");
                };
                return match kill::restore_connector(d, a, &c, &who()).await {
                    Ok(()) => Reply::ok(json!({"connector_restored": c, "agent": a})),
                    Err(e) => Reply::err(e.to_string()),
                };
            }
            match kill::resume(d, scope, &who()).await {
                Ok(r) => Reply::ok(r),
                Err(e) => Reply::err(e.to_string()),
            }
        }
        Request::Terminate { target, all } => {
            let scope = match scope(target, all) {
                Ok(s) => s,
                Err(e) => return Reply::err(e),
            };
            match killswitch::terminate(d.registry.tree(), &scope) {
                Ok(r) => {
                    // Revoked now, not when the reaper notices the cgroup
                    // is empty: a terminated agent's tokens die with it.
                    let covers =
                        |a: &crate::cgroup::AgentPath| scope.covers(&a.chain, &a.instances);
                    crate::daemon::jit::revoke_where(d, covers, "terminated");
                    Reply::ok(r)
                }
                Err(e) => Reply::err(e.to_string()),
            }
        }
        Request::Approvals
        | Request::Approve { .. }
        | Request::Grants
        | Request::GrantRevoke { .. } => super::grant_ops::handle(d, &who(), req).await,
        Request::Deny { id, reason } => {
            let answer = Answer::Denied { by: who(), reason };
            match d.approvals.answer(&id, answer) {
                Some(info) => {
                    Reply::ok(json!({"denied": id, "agent": info.chain, "action": info.action}))
                }
                None => Reply::err(format!("no pending approval {id} (see `cordon approvals`)")),
            }
        }
        Request::VaultSet { .. }
        | Request::VaultList
        | Request::VaultRm { .. }
        | Request::VaultRotateKey => super::vault_ops::handle(d, &who(), req).await,
        other => Reply::err(format!("{} is not an operator operation", other.name())),
    }
}

/// `cordon ps`: every instance with its state and what it did.
pub fn ps(d: &Shared) -> Reply {
    d.registry.rescan();
    let tree = d.registry.tree();
    let now = chrono::Utc::now();
    let policy = d.policy.engine().snapshot();
    let rows: Vec<_> = d
        .registry
        .snapshot()
        .into_iter()
        .filter(|(_, p)| p.instances.len() == p.chain.len())
        .map(|(id, p)| {
            let dir = tree.dir_of(&p);
            let pids = crate::cgroup::tree::pids_recursive(&dir).unwrap_or_default();
            let state = if kill::is_killed(d, &p) {
                "killed"
            } else if freeze::is_frozen(&dir).unwrap_or(false) {
                "frozen"
            } else {
                "running"
            };
            let (allowed, denied) = d.stats.get(&p);
            let usage = d
                .policy
                .engine()
                .run_usage(&crate::daemon::decide::run_id(&p))
                .unwrap_or_default();
            let contained = d.contained.get(id);
            // No policy loaded: everything is denied, so nothing learns.
            let mode = policy
                .as_ref()
                .map_or(cordon_policy::Mode::Enforce, |s| s.mode_of_chain(&p.chain));
            json!({
                "mode": mode.name(),
                "cgroup_id": id,
                // Instances started before this daemon: how they were
                // contained is not known here (the kernel profile stays).
                "contain": contained.as_ref().map_or("unknown", |c| c.mode_name()),
                "root": contained.as_ref().and_then(|c| c.root()).map(|r| r.name()),
                "agent": p.chain_display(),
                "instance": p.instance(),
                "pids": pids,
                "state": state,
                "uptime_s": (now - d.registry.started_at(&p)).num_seconds(),
                "allowed": allowed,
                "denied": denied,
                "cost_usd": usage.cost_usd,
            })
        })
        .collect();
    Reply::ok(rows)
}

/// An agent tried to operate Cordon: refused, and recorded.
pub async fn audit_refusal(d: &Shared, caller: &Caller, op: &str, agent: &AgentPath) {
    let rec = cordon_audit::NewRecord {
        pid: Some(caller.pid as u32),
        uid: Some(caller.uid),
        action: Some(format!("control.{op}")),
        decision: Some(cordon_audit::Decision::Deny),
        rule: Some("control-plane".into()),
        reason: Some("agents may not operate Cordon".into()),
        ..crate::request::record::attributed(agent, cordon_audit::EventKind::ControlRefused)
    };
    if let Err(e) = d.audit.append(&rec).await {
        tracing::error!("audit of a refused control call failed: {e}");
    }
}
