//! Kill switch and approval commands. `kill` and `resume` work even when
//! the daemon is down: as root, the CLI writes the pinned kill map and
//! `cgroup.freeze` itself, and records the kill for the next daemon.
use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use serde_json::Value;

use super::args::{Client, DenyArgs, KillArgs};
use crate::{
    bpf::EnforcementMaps,
    cgroup::{CgroupTree, mount::cgroup2_mount},
    control::{
        client::{self, ClientError},
        proto::Request,
    },
    daemon::kill_marks::{KillMark, KillMarks, Mark},
    killswitch::{self, Scope},
    paths::Paths,
};

pub(super) const TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn paths(c: &Client) -> Paths {
    Paths::resolve(c.state_dir.as_deref())
}

pub fn kill(a: &KillArgs) -> anyhow::Result<ExitCode> {
    let p = paths(&a.client);
    let req = Request::Kill {
        target: a.target.clone(),
        all: a.all,
        reason: a.reason.clone(),
        connector: a.connector.clone(),
    };
    match client::call(&p.socket, &req, TIMEOUT) {
        Ok(body) => {
            print_kill(&body);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::NoSocket(_) | ClientError::Stale(_)) if a.connector.is_none() => {
            offline_kill(a, &p)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_kill(body: &Value) {
    if let Some(c) = body.get("connector_cut") {
        println!(
            "cut connector {} for {}: {} GitHub tokens revoked ({} failed, lapsing at expiry), {} AWS sessions dropped",
            c.as_str().unwrap_or("?"),
            body["agent"].as_str().unwrap_or("?"),
            body["github_tokens_revoked"].as_u64().unwrap_or(0),
            body["github_revocations_failed"].as_u64().unwrap_or(0),
            body["aws_sessions_dropped"].as_u64().unwrap_or(0)
        );
        return;
    }
    for f in body["frozen"].as_array().into_iter().flatten() {
        println!("frozen {}", f.as_str().unwrap_or("?"));
    }
    println!(
        "killed in {} us: {} processes frozen, {} connections cut, {} approvals denied",
        body["elapsed_us"],
        body["pids"].as_array().map_or(0, Vec::len),
        body["connections_cut"].as_u64().unwrap_or(0),
        body["approvals_denied"].as_u64().unwrap_or(0)
    );
}

/// The daemon is down: mark and freeze directly from the pins, and record
/// the kill in the database so the next daemon re-applies it.
fn offline_kill(a: &KillArgs, p: &Paths) -> anyhow::Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the daemon is not running and killing without it needs root");
    }
    let scope = scope(a.target.as_deref(), a.all)?;
    eprintln!(
        "cordon: daemon not running; killing {} directly through the pinned maps",
        scope.key()
    );
    let tree = CgroupTree::new(cgroup2_mount()?, &p.cgroup_parent);
    let mut map = EnforcementMaps::kill_map_from_pins(&p.pin_dir())
        .with_context(|| format!("opening the pinned kill map in {}", p.pin_dir().display()))?;
    let report = killswitch::kill(&tree, &mut map.0, &scope)?;
    record_offline(p, &scope, &a.reason)?;
    for f in &report.frozen {
        println!("frozen {f}");
    }
    println!(
        "killed in {} us: {} processes frozen",
        report.elapsed_us,
        report.pids.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn record_offline(p: &Paths, scope: &Scope, reason: &str) -> anyhow::Result<()> {
    let marks = KillMarks::open(&p.kill_marks)?;
    let who = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name);
    let mark = KillMark {
        scope: scope.clone(),
        reason: reason.to_string(),
        by: format!("{who} (cli, daemon down)"),
        at: chrono::Utc::now(),
    };
    marks.put(&scope.key(), Mark::Kill(mark))?;
    Ok(())
}

fn scope(target: Option<&str>, all: bool) -> anyhow::Result<Scope> {
    Ok(match (target, all) {
        (_, true) => Scope::All,
        (Some(t), false) => Scope::parse(t)?,
        (None, false) => bail!("name an agent (AGENT or AGENT/ID) or pass --all"),
    })
}

pub fn resume(a: &KillArgs) -> anyhow::Result<ExitCode> {
    let p = paths(&a.client);
    let req = Request::Resume {
        target: a.target.clone(),
        all: a.all,
        connector: a.connector.clone(),
    };
    let body = client::call(&p.socket, &req, TIMEOUT)?;
    if let Some(c) = body.get("connector_restored") {
        println!("restored connector {}", c.as_str().unwrap_or("?"));
    }
    for f in body["frozen"].as_array().into_iter().flatten() {
        println!("resumed {}", f.as_str().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn terminate(a: &KillArgs) -> anyhow::Result<ExitCode> {
    let p = paths(&a.client);
    let req = Request::Terminate {
        target: a.target.clone(),
        all: a.all,
    };
    let body = client::call(&p.socket, &req, TIMEOUT)?;
    println!(
        "terminated {} processes",
        body["pids"].as_array().map_or(0, Vec::len)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn deny(a: &DenyArgs) -> anyhow::Result<ExitCode> {
    let body = client::call(
        &paths(&a.client).socket,
        &Request::Deny {
            id: a.id.clone(),
            reason: a.reason.clone(),
        },
        TIMEOUT,
    )?;
    println!(
        "denied {}: {} {}",
        a.id,
        body["agent"].as_str().unwrap_or(""),
        body["action"].as_str().unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}
