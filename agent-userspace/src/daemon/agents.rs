//! Who is behind a cgroup id. Identity comes from the kernel (the cgroup a
//! socket was created in), and the cgroup's place in the managed tree names
//! the agent, its delegation chain and its instance.
use std::{collections::HashMap, path::Path, sync::RwLock};

use chrono::{DateTime, Utc};

use crate::cgroup::{AgentPath, CgroupTree};

pub struct Registry {
    tree: CgroupTree,
    by_id: RwLock<HashMap<u64, AgentPath>>,
    /// Keyed by the run's path itself, not its `run_id` text: asked on every
    /// decision, and the text was a string built per request to look it up.
    started: RwLock<HashMap<AgentPath, DateTime<Utc>>>,
}

impl Registry {
    pub fn new(tree: CgroupTree) -> Registry {
        let reg = Registry {
            tree,
            by_id: RwLock::new(HashMap::new()),
            started: RwLock::new(HashMap::new()),
        };
        reg.rescan();
        reg
    }

    pub fn tree(&self) -> &CgroupTree {
        &self.tree
    }

    pub fn insert(&self, cgroup_id: u64, path: AgentPath) {
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cgroup_id, path);
    }

    /// The agent behind a cgroup id; rescans the tree once on a miss (an
    /// instance created before a daemon restart, or a sub-cgroup).
    pub fn lookup(&self, cgroup_id: u64) -> Option<AgentPath> {
        if let Some(p) = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cgroup_id)
        {
            return Some(p.clone());
        }
        self.rescan();
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cgroup_id)
            .cloned()
    }

    pub fn rescan(&self) {
        let Ok(all) = self.tree.walk() else { return };
        let mut map = self.by_id.write().unwrap_or_else(|e| e.into_inner());
        map.clear();
        let mut started = self.started.write().unwrap_or_else(|e| e.into_inner());
        for (id, path, dir) in all {
            started
                .entry(path.clone())
                .or_insert_with(|| dir_time(&dir));
            map.insert(id, path);
        }
    }

    /// When an instance started: recorded at `cordon run`, or the cgroup
    /// directory's change time for instances from before a restart.
    pub fn started_at(&self, path: &AgentPath) -> DateTime<Utc> {
        if let Some(t) = self
            .started
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return *t;
        }
        let t = dir_time(&self.tree.dir_of(path));
        self.started
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.clone(), t);
        t
    }

    pub fn mark_started(&self, path: &AgentPath) {
        self.started
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.clone(), Utc::now());
    }

    pub fn snapshot(&self) -> Vec<(u64, AgentPath)> {
        let mut v: Vec<_> = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        v.sort_by_key(|a| a.1.rel_path());
        v
    }
}

fn dir_time(dir: &Path) -> DateTime<Utc> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .and_then(|m| DateTime::from_timestamp(m.ctime(), m.ctime_nsec() as u32))
        .unwrap_or_else(Utc::now)
}
