//! Layout and bookkeeping of the managed tree. Directory depth below the
//! parent alternates agent name / instance id, so a delegated sub-agent
//! lives inside its parent's instance and inherits its parent's limits,
//! kill mark and freeze.
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use super::{CgroupError, validate_agent_name};

/// Where an agent instance sits in the tree: the delegation chain of agent
/// names (root first) and the instance id at every level.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AgentPath {
    pub chain: Vec<String>,
    pub instances: Vec<String>,
}

impl AgentPath {
    /// The acting agent: the last in the chain.
    pub fn agent(&self) -> &str {
        self.chain.last().map(String::as_str).unwrap_or("")
    }
    pub fn instance(&self) -> &str {
        self.instances.last().map(String::as_str).unwrap_or("")
    }
    /// `orchestrator/sub-writer`, as audit records and `cordon ps` show it.
    pub fn chain_display(&self) -> String {
        self.chain.join("/")
    }
    /// Path below the parent cgroup.
    pub fn rel_path(&self) -> PathBuf {
        let mut p = PathBuf::new();
        for (i, a) in self.chain.iter().enumerate() {
            p.push(a);
            if let Some(inst) = self.instances.get(i) {
                p.push(inst);
            }
        }
        p
    }
    /// Parses a path below the parent (`a/i1/b/i2`).
    pub fn from_rel(rel: &Path) -> Option<AgentPath> {
        let mut chain = Vec::new();
        let mut instances = Vec::new();
        for (i, c) in rel.components().enumerate() {
            let s = c.as_os_str().to_str()?.to_string();
            if i % 2 == 0 {
                chain.push(s);
            } else {
                instances.push(s);
            }
        }
        (!chain.is_empty()).then_some(AgentPath { chain, instances })
    }
}

#[derive(Clone, Debug)]
pub struct CgroupTree {
    mount: PathBuf,
    parent: PathBuf,
    /// Held by a launch from creating its instance cgroup until its first
    /// process is in, and by the reaper for a whole pass. Without it the
    /// reaper could remove the agent's directory between the launch
    /// finding it and creating the instance inside, or the instance before
    /// anything entered it, and the launch failed with ENOENT.
    entering: Arc<Mutex<()>>,
}

impl CgroupTree {
    pub fn new(mount: PathBuf, parent_name: &str) -> CgroupTree {
        let parent = mount.join(parent_name);
        CgroupTree {
            mount,
            parent,
            entering: Arc::default(),
        }
    }

    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// cgroup v2 level of the parent (the hierarchy root is level 0).
    pub fn parent_level(&self) -> u32 {
        self.parent
            .strip_prefix(&self.mount)
            .map(|r| r.components().count() as u32)
            .unwrap_or(1)
    }

    pub fn ensure_parent(&self) -> Result<(), CgroupError> {
        match std::fs::create_dir(&self.parent) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(CgroupError::io(&self.parent, e)),
        }
    }

    /// Creates `<base>/<agent>/<new instance>`; `base` is the parent for a
    /// top-level agent or the caller's instance for a delegated one.
    pub fn create_instance(
        &self,
        base: &AgentPath,
        agent: &str,
    ) -> Result<(AgentPath, PathBuf), CgroupError> {
        validate_agent_name(agent)?;
        let base_dir = self.parent.join(base.rel_path());
        let agent_dir = base_dir.join(agent);
        match std::fs::create_dir(&agent_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::io(&agent_dir, e)),
        }
        loop {
            let id = format!("{:08x}", rand::random::<u32>());
            let dir = agent_dir.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let mut path = base.clone();
                    path.chain.push(agent.to_string());
                    path.instances.push(id);
                    return Ok((path, dir));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CgroupError::io(&dir, e)),
            }
        }
    }

    /// Creates a new instance of `agent` under `base` and moves `pid` into
    /// it, with the reaper held off until the instance is populated. An
    /// instance `pid` could not enter is removed again.
    pub fn enter_new_instance(
        &self,
        base: &AgentPath,
        agent: &str,
        pid: i32,
    ) -> Result<(AgentPath, PathBuf), CgroupError> {
        let _reaper_held = self.entering.lock().unwrap_or_else(PoisonError::into_inner);
        let (path, dir) = self.create_instance(base, agent)?;
        if let Err(e) = self.move_pid(&dir, pid) {
            if let Err(rm) = std::fs::remove_dir(&dir) {
                tracing::warn!("removing the unused cgroup {}: {rm}", dir.display());
            }
            return Err(e);
        }
        Ok((path, dir))
    }

    pub fn dir_of(&self, path: &AgentPath) -> PathBuf {
        self.parent.join(path.rel_path())
    }

    pub fn move_pid(&self, dir: &Path, pid: i32) -> Result<(), CgroupError> {
        let file = dir.join("cgroup.procs");
        std::fs::write(&file, pid.to_string()).map_err(|e| CgroupError::io(&file, e))
    }

    /// Which managed instance (if any) a process is in, from /proc/PID/cgroup.
    pub fn locate_pid(&self, pid: i32) -> Result<Option<AgentPath>, CgroupError> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = std::fs::read_to_string(&file).map_err(|e| CgroupError::io(&file, e))?;
        let Some(rel) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
            return Ok(None);
        };
        let abs = self.mount.join(rel.trim_start_matches('/'));
        Ok(abs
            .strip_prefix(&self.parent)
            .ok()
            .and_then(AgentPath::from_rel))
    }

    /// Every managed cgroup with its id (inode number), deepest first.
    pub fn walk(&self) -> Result<Vec<(u64, AgentPath, PathBuf)>, CgroupError> {
        let mut out = Vec::new();
        if self.parent.exists() {
            walk_dir(&self.parent, &self.parent, &mut out)?;
        }
        out.reverse();
        Ok(out)
    }

    /// Removes instance cgroups that no longer hold any process, and agent
    /// directories left without instances. Returns what was removed.
    pub fn reap_empty(&self, keep: &dyn Fn(&AgentPath) -> bool) -> Vec<AgentPath> {
        let _launches_held = self.entering.lock().unwrap_or_else(PoisonError::into_inner);
        let mut removed = Vec::new();
        let Ok(all) = self.walk() else { return removed };
        for (_, path, dir) in all {
            if keep(&path) {
                continue;
            }
            if super::freeze::is_populated(&dir).unwrap_or(true) {
                continue;
            }
            // rmdir fails on a non-empty directory (child cgroups), which
            // is what we want: only leaves go.
            if std::fs::remove_dir(&dir).is_ok() {
                removed.push(path);
            }
        }
        removed
    }
}

fn walk_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(u64, AgentPath, PathBuf)>,
) -> Result<(), CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CgroupError::io(dir, e))?;
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let p = entry.path();
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        if let (Some(ap), Ok(md)) = (AgentPath::from_rel(rel), entry.metadata()) {
            out.push((md.ino(), ap, p.clone()));
        }
        walk_dir(root, &p, out)?;
    }
    Ok(())
}

/// cgroup v2 ids are the inode numbers of the cgroup directories: what
/// bpf_get_current_cgroup_id() returns for a task inside.
pub fn cgroup_id(dir: &Path) -> Result<u64, CgroupError> {
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|e| CgroupError::io(dir, e))
}

/// Every pid in a subtree (cgroup.procs of each cgroup).
pub fn pids_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    let file = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&file).map_err(|e| CgroupError::io(&file, e))?;
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(pids_recursive(&e.path())?);
            }
        }
    }
    Ok(pids)
}

/// Removes a whole subtree, deepest first (cgroup dirs hold only
/// kernel files, which rmdir accepts).
pub fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CgroupError::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_path_round_trips_through_directories() {
        let p = AgentPath::from_rel(Path::new("orch/1a2b/sub-writer/3c4d")).unwrap();
        assert_eq!(p.chain, ["orch", "sub-writer"]);
        assert_eq!(p.instances, ["1a2b", "3c4d"]);
        assert_eq!(p.chain_display(), "orch/sub-writer");
        assert_eq!(p.rel_path(), PathBuf::from("orch/1a2b/sub-writer/3c4d"));
        assert_eq!(p.agent(), "sub-writer");
        assert_eq!(p.instance(), "3c4d");
    }

    #[test]
    fn parent_level_counts_components_below_the_mount() {
        let t = CgroupTree::new(PathBuf::from("/sys/fs/cgroup/unified"), "cordon");
        assert_eq!(t.parent_level(), 1);
    }
}
