//! Who is behind a cgroup id. Identity comes from the kernel (the cgroup a
//! socket was created in), and the cgroup's place in the managed tree names
//! the agent, its delegation chain and its instance.
use std::{collections::HashMap, sync::RwLock};

use crate::cgroup::{AgentPath, CgroupTree};

pub struct Registry {
    tree: CgroupTree,
    by_id: RwLock<HashMap<u64, AgentPath>>,
}

impl Registry {
    pub fn new(tree: CgroupTree) -> Registry {
        let reg = Registry {
            tree,
            by_id: RwLock::new(HashMap::new()),
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
        for (id, path, _) in all {
            map.insert(id, path);
        }
    }

    pub fn snapshot(&self) -> Vec<(u64, AgentPath)> {
        let mut v: Vec<_> = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        v.sort_by(|a, b| a.1.rel_path().cmp(&b.1.rel_path()));
        v
    }
}
