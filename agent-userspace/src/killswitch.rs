//! The kill switch, in the order that closes every door before the next:
//! 1. mark the agent's cgroup in the pinned kill map, so every new connect,
//!    send and socket from its subtree fails with EPERM in the kernel;
//! 2. freeze the subtree and wait for the kernel to confirm;
//! 3. (daemon only) abort in-flight proxied connections and pending
//!    approvals.
//!
//! Steps 1 and 2 need only root and the pins, so the CLI performs them
//! itself when the daemon is down. Kill state is persisted so a restarted
//! daemon re-applies it.
use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use aya::maps::{HashMap, MapData};
use serde::{Deserialize, Serialize};

use crate::{
    bpf::{BpfError, maps},
    cgroup::{AgentPath, CgroupError, CgroupTree, freeze, tree},
};

/// What a kill names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every agent under the parent.
    All,
    /// One agent (all its instances and sub-agents).
    Agent(String),
    /// One instance of an agent: `AGENT/ID`.
    Instance(String, String),
    /// One run anywhere in the tree, sub-agents included (automatic
    /// containment: a limit or envelope breach).
    Run(AgentPath),
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, CgroupError> {
        match s.split_once('/') {
            Some((a, i)) => {
                crate::cgroup::validate_agent_name(a)?;
                if i.is_empty() || !i.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(CgroupError::BadName {
                        name: s.into(),
                        why: "an instance is AGENT/ID with a hexadecimal id (see `cordon ps`)",
                    });
                }
                Ok(Scope::Instance(a.into(), i.into()))
            }
            None => {
                crate::cgroup::validate_agent_name(s)?;
                Ok(Scope::Agent(s.into()))
            }
        }
    }

    pub fn key(&self) -> String {
        match self {
            Scope::All => "*".into(),
            Scope::Agent(a) => a.clone(),
            Scope::Instance(a, i) => format!("{a}/{i}"),
            Scope::Run(p) => p.rel_path().display().to_string(),
        }
    }

    /// The cgroup directories the scope covers (that exist now).
    pub fn dirs(&self, tree: &CgroupTree) -> Vec<PathBuf> {
        match self {
            Scope::All => std::fs::read_dir(tree.parent())
                .map(|r| {
                    r.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default(),
            Scope::Agent(a) => existing(tree.parent().join(a)),
            Scope::Instance(a, i) => existing(tree.parent().join(a).join(i)),
            Scope::Run(p) => existing(tree.dir_of(p)),
        }
    }

    /// Does a delegation chain / instance fall under this scope?
    pub fn covers(&self, chain: &[String], instances: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Agent(a) => chain.first() == Some(a),
            Scope::Instance(a, i) => chain.first() == Some(a) && instances.first() == Some(i),
            Scope::Run(p) => chain.starts_with(&p.chain) && instances.starts_with(&p.instances),
        }
    }
}

fn existing(p: PathBuf) -> Vec<PathBuf> {
    if p.is_dir() { vec![p] } else { vec![] }
}

#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("no agent cgroup matches {0} (see `cordon ps`)")]
    NothingToKill(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
}

/// What a kill did, for the operator.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KillReport {
    pub frozen: Vec<String>,
    pub pids: Vec<i32>,
    pub elapsed_us: u64,
}

/// Steps 1 and 2 for every cgroup the scope covers.
pub fn kill(
    tree: &CgroupTree,
    kill_map: &mut HashMap<MapData, u64, u32>,
    scope: &Scope,
) -> Result<KillReport, KillError> {
    let start = Instant::now();
    let dirs = scope.dirs(tree);
    if dirs.is_empty() && *scope != Scope::All {
        return Err(KillError::NothingToKill(scope.key()));
    }
    for d in &dirs {
        maps::mark_killed(kill_map, tree::cgroup_id(d)?)?;
    }
    let mut report = KillReport::default();
    for d in &dirs {
        freeze::freeze(d)?;
        report.frozen.push(rel(tree, d));
        report.pids.extend(tree::pids_recursive(d)?);
    }
    report.elapsed_us = start.elapsed().as_micros() as u64;
    Ok(report)
}

/// Undoes a kill: thaw first, then lift the kernel mark.
pub fn resume(
    tree: &CgroupTree,
    kill_map: &mut HashMap<MapData, u64, u32>,
    scope: &Scope,
) -> Result<KillReport, KillError> {
    let start = Instant::now();
    let dirs = scope.dirs(tree);
    let mut report = KillReport::default();
    for d in &dirs {
        freeze::thaw(d)?;
        maps::unmark_killed(kill_map, tree::cgroup_id(d)?)?;
        report.frozen.push(rel(tree, d));
    }
    report.elapsed_us = start.elapsed().as_micros() as u64;
    Ok(report)
}

/// Kills every process under the scope (they are gone, not frozen).
pub fn terminate(tree: &CgroupTree, scope: &Scope) -> Result<KillReport, KillError> {
    let dirs = scope.dirs(tree);
    if dirs.is_empty() {
        return Err(KillError::NothingToKill(scope.key()));
    }
    let mut report = KillReport::default();
    for d in &dirs {
        report.pids.extend(tree::pids_recursive(d)?);
        freeze::kill_all(d)?;
        report.frozen.push(rel(tree, d));
    }
    Ok(report)
}

fn rel(tree: &CgroupTree, d: &Path) -> String {
    d.strip_prefix(tree.parent())
        .unwrap_or(d)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_agents_and_instances_and_reject_paths() {
        assert_eq!(Scope::parse("bot").unwrap(), Scope::Agent("bot".into()));
        assert_eq!(
            Scope::parse("bot/1a2b").unwrap(),
            Scope::Instance("bot".into(), "1a2b".into())
        );
        assert!(Scope::parse("../x").is_err());
        assert!(Scope::parse("bot/../../x").is_err());
    }

    #[test]
    fn agent_scope_covers_its_sub_agents() {
        let s = Scope::Agent("orch".into());
        assert!(s.covers(&["orch".into(), "sub".into()], &["1".into(), "2".into()]));
        assert!(!s.covers(&["other".into()], &["1".into()]));
        let i = Scope::Instance("orch".into(), "1".into());
        assert!(i.covers(&["orch".into()], &["1".into()]));
        assert!(!i.covers(&["orch".into()], &["2".into()]));
    }
}
