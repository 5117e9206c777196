//! Approvals and standing grants on the control socket: what is waiting
//! for a human (with everything needed to decide), the four answers (once,
//! N uses, a duration, always), and the grants in force.
use serde_json::{Value, json};

use super::proto::{Reply, Request};
use crate::daemon::{
    Shared,
    approvals::{Answer, PendingInfo},
    grants::{
        Grant, GrantAsk,
        always::{self, Always},
        grant::Source,
        lifecycle,
    },
};

pub async fn handle(d: &Shared, by: &str, req: Request) -> Reply {
    let now = chrono::Utc::now();
    match req {
        Request::Approvals => Reply::ok(
            d.approvals
                .list()
                .iter()
                .map(|i| listed(i, now))
                .collect::<Vec<_>>(),
        ),
        Request::Approve {
            id,
            grant_secs,
            uses,
            always,
            same_params,
        } => {
            let ask = GrantAsk {
                uses,
                for_secs: grant_secs,
                same_params,
            };
            match approve(d, by, &id, ask, always).await {
                Ok(v) => Reply::ok(v),
                Err(e) => Reply::err(e),
            }
        }
        Request::Grants => Reply::ok(d.grants.list(now)),
        Request::GrantRevoke { id } => match lifecycle::revoke(d, &id, by).await {
            Ok(g) => {
                Reply::ok(json!({"revoked": g.id, "agent": g.chain_display(), "action": g.action}))
            }
            Err(e) => Reply::err(e),
        },
        other => Reply::err(format!("{} is not an approval operation", other.name())),
    }
}

/// A pending approval as `cordon approvals` shows it: how long it has been
/// held, as well as what it asks.
pub fn listed(i: &PendingInfo, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("held_secs".into(), json!((now - i.created).num_seconds()));
        m.insert(
            "answer_within_secs".into(),
            json!((i.deadline - now).num_seconds().max(0)),
        );
    }
    v
}

/// One approval answered at a time: two operators approving the same
/// request at once must not each give a grant of N uses.
static ANSWERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The standing part of the answer goes into force first; only then is the
/// held request let go. When that fails, the request stays held and the
/// operator sees why.
async fn approve(
    d: &Shared,
    by: &str,
    id: &str,
    ask: GrantAsk,
    always: bool,
) -> Result<Value, String> {
    let _one_at_a_time = ANSWERING.lock().await;
    let info = d
        .approvals
        .get(id)
        .ok_or_else(|| format!("no pending approval {id} (see `cordon approvals`)"))?;
    let now = chrono::Utc::now();
    let mut standing = json!(null);
    if always {
        standing = json!({"file": write_always(d, &info, ask.same_params, by).await?});
    } else {
        let src = Source {
            id: d.grants.new_id(),
            chain: &info.agent.chain,
            action: &info.action,
            params: &info.params,
            approval: &info.id,
            rule: &info.rule,
            by,
        };
        if let Some(g) = Grant::from_answer(src, ask, now) {
            standing = json!({"grant": lifecycle::give(d, g).await?});
        }
    }
    match d
        .approvals
        .answer(id, Answer::Approved { by: by.to_string() })
    {
        Some(info) => Ok(json!({
            "approved": id,
            "agent": info.chain,
            "action": info.action,
            "standing": standing,
        })),
        None => Err(format!(
            "approval {id} ended before the answer reached it; what was granted stands: {standing}"
        )),
    }
}

/// Writes the `approved` rule file, reloads the policy so it is in force
/// (the reload is recorded as any other), then records the grant. A file
/// the reload rejects is taken out again.
async fn write_always(
    d: &Shared,
    info: &PendingInfo,
    same_params: bool,
    by: &str,
) -> Result<String, String> {
    let a = Always {
        approval: &info.id,
        chain: &info.agent.chain,
        action: &info.action,
        params: same_params.then_some(&info.params),
        rule: &info.rule,
        by,
        now: chrono::Utc::now(),
    };
    let text = always::render(&a).map_err(|e| e.to_string())?;
    let name = always::file_name(&info.id);
    let path = always::write(&d.cfg.policies, &name, &text).map_err(|e| e.to_string())?;
    let trigger = format!("cordon approve {} --always by {by} wrote {name}", info.id);
    let version = match crate::daemon::reload::reload_all(d, &trigger).await {
        Ok(v) => v,
        Err(e) => {
            let removed = std::fs::remove_file(&path).map_or_else(
                |r| format!("; removing it failed too: {r}"),
                |()| String::new(),
            );
            return Err(format!(
                "{name} was not put in force (the request stays held){removed}: {e}"
            ));
        }
    };
    d.audit
        .append(&always::record(&a, &name, &version))
        .await
        .map_err(|e| {
            format!("{name} is in force, but its grant record could not be written: {e}")
        })?;
    Ok(name)
}
