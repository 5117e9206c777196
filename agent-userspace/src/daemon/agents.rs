//! Who is behind a cgroup id. Identity comes from the kernel (the cgroup a
//! socket was created in), and the cgroup's place in the managed tree names
//! the agent, its delegation chain and its instance.
use std::{
    collections::HashMap,
    path::Path,
    sync::RwLock,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::cgroup::{AgentPath, CgroupTree};

pub struct Registry {
    tree: CgroupTree,
    by_id: RwLock<HashMap<u64, AgentPath>>,
    /// Keyed by the run's path itself, not its `run_id` text: asked on every
    /// decision, and the text was a string built per request to look it up.
    started: RwLock<HashMap<AgentPath, DateTime<Utc>>>,
    /// Instances whose cgroup is gone, for a while: the kernel's record of
    /// what an agent was refused can be read after its last process exited
    /// and its cgroup was reaped, and must still name it.
    recent: RwLock<Recent>,
}

/// How long an ended instance is still named.
pub const ENDED_KEPT_FOR: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Recent {
    ended: HashMap<u64, (AgentPath, Instant)>,
    /// The process `cordon run` moved into each instance, by pid. It
    /// created the instance's Landlock domain and then became the agent.
    launchers: HashMap<u32, u64>,
}

impl Registry {
    pub fn new(tree: CgroupTree) -> Registry {
        let reg = Registry {
            tree,
            by_id: RwLock::new(HashMap::new()),
            started: RwLock::new(HashMap::new()),
            recent: RwLock::new(Recent::default()),
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

    /// An instance `cordon run` just launched, and the launcher's pid.
    pub fn insert_launched(&self, cgroup_id: u64, path: AgentPath, launcher_pid: u32) {
        self.insert(cgroup_id, path);
        self.recent
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .launchers
            .insert(launcher_pid, cgroup_id);
    }

    /// The agent behind a cgroup id, also if the instance ended in the
    /// last [`ENDED_KEPT_FOR`]. For records of what happened, never to
    /// decide what may happen.
    pub fn lookup_recent(&self, cgroup_id: u64) -> Option<AgentPath> {
        self.lookup(cgroup_id).or_else(|| {
            let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
            recent.ended.get(&cgroup_id).map(|(p, _)| p.clone())
        })
    }

    /// The instance a launcher started, live or recently ended, by the
    /// launcher's pid. Only for a pid that no longer exists: a live process
    /// is named by its own cgroup, and a reused pid is not the launcher.
    pub fn launched_by(&self, pid: u32) -> Option<u64> {
        let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
        recent.launchers.get(&pid).copied()
    }

    pub fn rescan(&self) {
        let Ok(all) = self.tree.walk() else { return };
        let mut map = self.by_id.write().unwrap_or_else(|e| e.into_inner());
        let before = std::mem::take(&mut *map);
        let mut started = self.started.write().unwrap_or_else(|e| e.into_inner());
        for (id, path, dir) in all {
            started
                .entry(path.clone())
                .or_insert_with(|| dir_time(&dir));
            map.insert(id, path);
        }
        let mut recent = self.recent.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (id, path) in before {
            if !map.contains_key(&id) {
                recent.ended.insert(id, (path, now));
            }
        }
        recent.prune(&map, now);
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

impl Recent {
    /// Forgets ended instances older than [`ENDED_KEPT_FOR`], and the
    /// launchers of instances neither live nor recently ended.
    fn prune(&mut self, live: &HashMap<u64, AgentPath>, now: Instant) {
        self.ended
            .retain(|_, (_, at)| now.duration_since(*at) < ENDED_KEPT_FOR);
        let ended = &self.ended;
        self.launchers
            .retain(|_, id| live.contains_key(id) || ended.contains_key(id));
    }
}

fn dir_time(dir: &Path) -> DateTime<Utc> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .and_then(|m| DateTime::from_timestamp(m.ctime(), m.ctime_nsec() as u32))
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, CgroupTree) {
        let dir = tempfile::tempdir().unwrap();
        let tree = CgroupTree::new(dir.path().to_path_buf(), "cordon");
        tree.ensure_parent().unwrap();
        (dir, tree)
    }

    #[test]
    fn an_ended_instance_is_still_named_for_records_but_not_for_decisions() {
        let (_dir, tree) = tree();
        let reg = Registry::new(tree.clone());
        let (path, dir) = tree
            .create_instance(
                &AgentPath {
                    chain: vec![],
                    instances: vec![],
                },
                "bot",
            )
            .unwrap();
        let id = crate::cgroup::tree::cgroup_id(&dir).unwrap();
        reg.insert_launched(id, path.clone(), 4242);
        assert_eq!(reg.launched_by(4242), Some(id));

        std::fs::remove_dir(&dir).unwrap();
        reg.rescan();
        assert_eq!(reg.lookup(id), None, "an ended instance decides nothing");
        assert_eq!(reg.lookup_recent(id), Some(path));
        assert_eq!(reg.launched_by(4242), Some(id));
    }

    #[test]
    fn an_ended_instance_and_its_launcher_are_forgotten_after_the_grace_period() {
        let (_dir, tree) = tree();
        let reg = Registry::new(tree.clone());
        let base = AgentPath {
            chain: vec![],
            instances: vec![],
        };
        let (gone, gone_dir) = tree.create_instance(&base, "bot").unwrap();
        let (live, live_dir) = tree.create_instance(&base, "bot").unwrap();
        let gone_id = crate::cgroup::tree::cgroup_id(&gone_dir).unwrap();
        let live_id = crate::cgroup::tree::cgroup_id(&live_dir).unwrap();
        reg.insert_launched(gone_id, gone, 1);
        reg.insert_launched(live_id, live, 2);
        std::fs::remove_dir(&gone_dir).unwrap();
        reg.rescan();

        let later = Instant::now() + ENDED_KEPT_FOR + Duration::from_secs(1);
        let live_map = reg.by_id.read().unwrap().clone();
        reg.recent.write().unwrap().prune(&live_map, later);
        assert_eq!(reg.lookup_recent(gone_id), None);
        assert_eq!(reg.launched_by(1), None);
        assert_eq!(
            reg.launched_by(2),
            Some(live_id),
            "a live instance keeps its launcher"
        );
    }
}
