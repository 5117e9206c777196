//! `cordon run` on the daemon's side: create the instance cgroup, put the
//! kernel half of its containment in place, record the launch, and only
//! then move the caller in. Any step that fails refuses the run: an agent
//! is never started less contained than its policy says.
use std::path::PathBuf;

use cordon_policy::ContainMode;

use super::{
    Shared,
    contained::{Containment, RootMode},
    launch_fs::{account_homes, private_tmp, protected, remove_tmp},
};
use crate::{
    cgroup::AgentPath,
    contain::{self, Launch},
    control::{proto::RunReply, server::Caller},
};

/// The run request, as the control socket received it.
pub struct RunRequest {
    pub agent: String,
    pub uid: Option<u32>,
    pub cwd: Option<PathBuf>,
    /// A root agent in a user namespace: the host uid of its uid 0.
    pub mapped_uid: Option<u32>,
    /// The launcher's environment, which the agent inherits.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("agent {0} is killed; run `cordon resume {1}` first")]
    Killed(String, String),
    #[error("uid {asked} may not be asked for by a caller running as uid {caller}")]
    ForeignUid { asked: u32, caller: u32 },
    #[error("the working directory must be an absolute path, got {0:?}")]
    BadCwd(Option<PathBuf>),
    #[error("containment for agent {agent}: {source}")]
    Plan {
        agent: String,
        #[source]
        source: contain::PlanError,
    },
    #[error(
        "the kernel layer of containment is unavailable ({0}); refusing to start a contained agent. Fix the host (see `cordon status`) or set `contain = \"off\"` for this agent"
    )]
    KernelUnavailable(String),
    #[error("installing containment for cgroup {cgroup_id}: {message}")]
    Install { cgroup_id: u64, message: String },
    #[error("creating the private temporary directory {}: {source}", path.display())]
    Tmp {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the environment variable {var} holds the secret of vault entry {entry:?}: the agent would start with the real credential. Unset it before `cordon run` (a connector's `placeholder_env` gives the agent a placeholder instead)"
    )]
    SecretInEnvironment { var: String, entry: String },
    #[error("checking the environment against the vault: {0}; refusing the launch")]
    VaultCheck(String),
    #[error("recording the launch: {0}")]
    Audit(String),
    #[error("keeping the instance's containment: {0}")]
    Store(#[from] super::contained_store::StoreError),
    #[error("{0}")]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

pub async fn launch(d: &Shared, caller: &Caller, req: RunRequest) -> Result<RunReply, LaunchError> {
    let base = caller.agent.clone().unwrap_or(AgentPath {
        chain: vec![],
        instances: vec![],
    });
    let mut probe = base.clone();
    probe.chain.push(req.agent.clone());
    if super::kill::is_killed(d, &probe) {
        return Err(LaunchError::Killed(
            probe.chain_display(),
            probe.chain[0].clone(),
        ));
    }
    // Root may start an agent as anyone; anybody else only as themselves.
    let uid = req.uid.unwrap_or(caller.uid);
    if caller.uid != 0 && uid != caller.uid {
        return Err(LaunchError::ForeignUid {
            asked: uid,
            caller: caller.uid,
        });
    }
    if req.mapped_uid.is_some() && caller.uid != 0 {
        return Err(LaunchError::ForeignUid {
            asked: 0,
            caller: caller.uid,
        });
    }
    // What Cordon sets in the agent's environment: exempt from the check,
    // and the reply's.
    let mut env = super::agent_env::agent_env(d, &req.agent);
    if caller.agent.is_none() {
        check_env(d, &req.env, &env)?;
    }
    let root = (uid == 0).then_some(match req.mapped_uid {
        Some(m) => RootMode::UserNamespace(m),
        None => RootMode::LandlockOnly,
    });
    let cwd = match req.cwd {
        Some(c) if c.is_absolute() => c,
        other => return Err(LaunchError::BadCwd(other)),
    };
    let policy = d
        .policy
        .engine()
        .snapshot()
        .map(|set| set.contain_for(&req.agent))
        .unwrap_or_default();

    let tree = d.registry.tree();
    // The caller moves in at once, with the reaper held off until it has.
    // It is `cordon run` itself, blocked on this reply: nothing runs as the
    // agent until containment below is in place and the reply says so. On
    // any failure below it exits and the reaper removes the emptied cgroup.
    let (path, dir) = tree.enter_new_instance(&base, &req.agent, caller.pid)?;
    let cgroup_id = crate::cgroup::tree::cgroup_id(&dir)?;
    let containment = prepare(d, &req.agent, uid, root, cwd, &policy, cgroup_id).await?;
    let kept = super::contained_store::save(&d.cfg.paths.state_dir, cgroup_id, &containment)
        .map_err(LaunchError::from);
    let recorded = match kept {
        Ok(()) => record_launch(d, caller, &path, cgroup_id, &containment).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        super::contain_watch::tear_down(d, cgroup_id, &containment);
        return Err(e);
    }
    d.registry
        .insert_launched(cgroup_id, path.clone(), caller.pid as u32);
    d.registry.mark_started(&path);
    let reply_contain = containment.landlock();
    let tmp = containment.tmp().map(|p| p.display().to_string());
    d.contained.insert(cgroup_id, containment);
    tracing::info!(agent = %path.chain_display(), instance = path.instance(), pid = caller.pid, uid, "agent started");

    match super::jit::aws_env(d, &path) {
        Ok(vars) => env.extend(vars),
        // The agent starts without AWS keys; its AWS requests are refused.
        Err(e) => tracing::error!(agent = %path.chain_display(), "{e:#}"),
    }
    if let Some(tmp) = tmp {
        for var in ["TMPDIR", "TMP", "TEMP"] {
            env.insert(var.into(), tmp.clone());
        }
    }
    Ok(RunReply {
        chain: path.chain_display(),
        instance: path.instance().to_string(),
        cgroup: dir.display().to_string(),
        env,
        contain: reply_contain,
    })
}

/// The plan, the private temp dir and the kernel profile, in that order.
async fn prepare(
    d: &Shared,
    agent: &str,
    uid: u32,
    root: Option<RootMode>,
    cwd: PathBuf,
    policy: &cordon_policy::ContainPolicy,
    cgroup_id: u64,
) -> Result<Containment, LaunchError> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    if policy.mode == ContainMode::Off {
        return Ok(Containment::off(uid, root, policy.off_by.clone()));
    }
    let kernel = d
        .contain_kernel
        .as_ref()
        .map_err(|reason| LaunchError::KernelUnavailable(reason.clone()))?;
    let home = user
        .as_ref()
        .map_or_else(|| PathBuf::from("/nonexistent"), |u| u.dir.clone());
    // A mapped root agent is its host uid on disk.
    let owner = match root {
        Some(RootMode::UserNamespace(m)) => m,
        _ => uid,
    };
    let tmp = private_tmp(d, cgroup_id, owner)?;
    let launch = Launch {
        home,
        homes: account_homes(),
        cwd,
        tmp: tmp.clone(),
    };
    let protected = protected(d);
    // The control socket has its own thread: expanding a few globs here
    // blocks no proxy traffic.
    let plan = contain::plan::plan(
        policy,
        &launch,
        &protected,
        &contain::expand::expand,
        &contain::carve::list_dir,
    );
    let plan = match plan {
        Ok(p) => p,
        Err(source) => {
            remove_tmp(&tmp);
            return Err(LaunchError::Plan {
                agent: agent.to_string(),
                source,
            });
        }
    };
    if let Err(message) = kernel.install(cgroup_id, &plan) {
        remove_tmp(&tmp);
        return Err(LaunchError::Install { cgroup_id, message });
    }
    Ok(Containment::on(uid, root, plan, tmp))
}

/// An operator's environment holding a vault secret refuses the launch
/// (`launch_env`); a vault that cannot be read refuses it too.
fn check_env(
    d: &Shared,
    launcher_env: &[(String, String)],
    set_by_cordon: &std::collections::BTreeMap<String, String>,
) -> Result<(), LaunchError> {
    if launcher_env.is_empty() {
        return Ok(());
    }
    let secrets = super::launch_env::opaque_secrets(&d.vault)
        .map_err(|e| LaunchError::VaultCheck(e.to_string()))?;
    match super::launch_env::find(launcher_env, set_by_cordon, &secrets) {
        Some((var, entry)) => Err(LaunchError::SecretInEnvironment { var, entry }),
        None => Ok(()),
    }
}

/// The launch record: who started what, as whom, and how it is contained.
/// Written before the agent runs; a launch that cannot be recorded does
/// not happen.
async fn record_launch(
    d: &Shared,
    caller: &Caller,
    path: &AgentPath,
    cgroup_id: u64,
    c: &Containment,
) -> Result<(), LaunchError> {
    let mut params = serde_json::Map::new();
    params.insert("contain".into(), c.mode_name().into());
    if let Some(by) = c.off_by() {
        params.insert("contain_off_by".into(), by.into());
    }
    params.insert("run_uid".into(), c.uid().into());
    if let Some(root) = c.root() {
        params.insert("root".into(), root.name().into());
        if let RootMode::UserNamespace(m) = root {
            params.insert("mapped_uid".into(), m.into());
        }
    }
    params.insert("launcher_pid".into(), caller.pid.into());
    let rec = cordon_audit::NewRecord {
        cgroup_id: Some(cgroup_id),
        pid: Some(caller.pid as u32),
        uid: Some(caller.uid),
        action: Some("agent.launch".into()),
        params,
        policy_version: Some(d.policy.version()),
        ..crate::request::record::attributed(path, cordon_audit::EventKind::Launch)
    };
    d.audit
        .append(&rec)
        .await
        .map(|_| ())
        .map_err(|e| LaunchError::Audit(e.to_string()))
}
