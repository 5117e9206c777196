//! Operator commands that talk to the daemon or clean up after it.
use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, bail};

use super::args::Client;
use crate::{
    bpf,
    cgroup::{self, CgroupTree, mount::cgroup2_mount},
    control::{client, proto::Request},
    paths::Paths,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn paths(c: &Client) -> Paths {
    Paths::resolve(c.state_dir.as_deref())
}

pub fn status(c: &Client) -> anyhow::Result<ExitCode> {
    let body = client::call(&paths(c).socket, &Request::Status, TIMEOUT)?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(ExitCode::SUCCESS)
}

pub fn ps(c: &Client) -> anyhow::Result<ExitCode> {
    let body = client::call(&paths(c).socket, &Request::Ps, TIMEOUT)?;
    println!(
        "{:<28} {:<10} {:<8} {:<8} {:>8} {:>8} {:>7} {:>9} {:<8} {:<14}  PIDS",
        "AGENT",
        "INSTANCE",
        "STATE",
        "MODE",
        "UPTIME",
        "ALLOWED",
        "DENIED",
        "COST",
        "CONTAIN",
        "ROOT"
    );
    for row in body.as_array().into_iter().flatten() {
        let pids: Vec<String> = row["pids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        // serde_json::Value ignores width and alignment: format numbers as numbers.
        let num = |k: &str| row[k].as_i64().unwrap_or(0);
        println!(
            "{:<28} {:<10} {:<8} {:<8} {:>7}s {:>8} {:>7} {:>9} {:<8} {:<14}  {}",
            row["agent"].as_str().unwrap_or(""),
            row["instance"].as_str().unwrap_or(""),
            row["state"].as_str().unwrap_or(""),
            // Loud on purpose: a learning agent's refusals are not enforced.
            match row["mode"].as_str().unwrap_or("?") {
                "learn" => "LEARN",
                other => other,
            },
            num("uptime_s"),
            num("allowed"),
            num("denied"),
            format!("${:.4}", row["cost_usd"].as_f64().unwrap_or(0.0)),
            // Loud on purpose: an uncontained agent must stand out.
            match row["contain"].as_str().unwrap_or("unknown") {
                "off" => "OFF",
                other => other,
            },
            row["root"].as_str().unwrap_or("-"),
            pids.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn policy_reload(c: &Client) -> anyhow::Result<ExitCode> {
    let body = client::call(&paths(c).socket, &Request::PolicyReload, TIMEOUT)?;
    println!(
        "policy reloaded: version {}",
        body["version"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn policy_check(dir: &Path) -> anyhow::Result<ExitCode> {
    let set = cordon_policy::PolicySet::load_dir(dir)?;
    println!("{}: ok, version {}", dir.display(), set.version());
    Ok(ExitCode::SUCCESS)
}

/// Removes everything a daemon left attached: link pins (which detaches the
/// programs), map pins, the cgroup tree (its processes are killed first),
/// the agents' private temp dirs and a stale socket. Refuses while a daemon
/// is serving.
pub fn cleanup(c: &Client) -> anyhow::Result<ExitCode> {
    let p = paths(c);
    if std::os::unix::net::UnixStream::connect(&p.socket).is_ok() {
        bail!(
            "a cordon daemon is serving {}; stop it before cleanup",
            p.socket.display()
        );
    }
    let removed = bpf::detach_all(&p.pin_dir())?;
    let tree = CgroupTree::new(cgroup2_mount()?, &p.cgroup_parent);
    let parent = tree.parent().to_path_buf();
    if parent.exists() {
        if cgroup::freeze::is_populated(&parent).unwrap_or(false) {
            eprintln!(
                "cordon: killing the agents still running under {}",
                parent.display()
            );
            cgroup::freeze::kill_all(&parent)?;
            let start = std::time::Instant::now();
            while cgroup::freeze::is_populated(&parent).unwrap_or(false)
                && start.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        cgroup::tree::remove_tree(&parent)?;
    }
    let tmps = remove_agent_tmps(&p)?;
    let _ = std::fs::remove_file(&p.socket);
    println!(
        "cleaned up: {} pins removed, cgroup {} removed, {tmps} agent temp dirs removed",
        removed.len(),
        parent.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The private temp dirs of this namespace's agents, which may hold what
/// they wrote: a daemon removes each when its instance ends, so these are
/// the ones whose end no daemon saw (it was stopped and its state removed).
/// Only once the agents are gone, so none is writing into one.
fn remove_agent_tmps(p: &Paths) -> anyhow::Result<usize> {
    let dir = std::env::temp_dir();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| p.is_agent_tmp_name(n)) {
            continue;
        }
        // `remove_dir_all` never follows a symlink planted under that name.
        let path = entry.path();
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// `cordon console token`: a fresh login token for the web console. Only
/// its hash is written (root-only, in the state directory); the token is
/// printed once, on stdout, for the operator to paste into the login page.
pub fn console_token(c: &Client) -> anyhow::Result<ExitCode> {
    let p = paths(c);
    if !p.state_dir.is_dir() {
        bail!(
            "no state directory at {} (start the daemon once, or pass --state-dir)",
            p.state_dir.display()
        );
    }
    let token = crate::console::token::generate();
    crate::console::token::store(&p.state_dir, &token)?;
    println!("{token}");
    eprintln!(
        "cordon: console token stored as a hash in {}; earlier tokens and their sessions no longer work",
        crate::console::token::hash_path(&p.state_dir).display()
    );
    Ok(ExitCode::SUCCESS)
}
