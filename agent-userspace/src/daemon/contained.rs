//! How each running instance is contained: kept from its launch until its
//! cgroup is reaped, for audit records (which rule refused a path), for
//! `cordon ps`, and to take the kernel profile down afterwards.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Instant,
};

use super::agents::ENDED_KEPT_FOR;

use crate::contain::{ContainPlan, LandlockSpec};

/// The kernel half of containment, as the daemon drives it. The real one
/// is the eBPF maps (`bpf::contain`); tests use a recording fake.
pub trait KernelLayer: Send + Sync {
    /// Puts the instance's deny list and socket allowlist in force.
    fn install(&self, cgroup_id: u64, plan: &ContainPlan) -> Result<(), String>;
    /// Takes them down (the instance is gone).
    fn remove(&self, cgroup_id: u64) -> Result<(), String>;
    /// Refusals the kernel could not report (its buffer was full), since load.
    fn lost_events(&self) -> Result<u64, String>;
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Mode {
    On {
        plan: Arc<ContainPlan>,
        tmp: PathBuf,
    },
    Off {
        by: Option<Arc<str>>,
    },
}

/// How a root agent is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RootMode {
    /// Root inside a user namespace, this host uid outside.
    UserNamespace(u32),
    /// Real root, held by Landlock and the kernel deny list only (the host
    /// forbids user namespaces).
    LandlockOnly,
}

impl RootMode {
    pub fn name(self) -> &'static str {
        match self {
            RootMode::UserNamespace(_) => "mapped",
            RootMode::LandlockOnly => "landlock-only",
        }
    }
}

/// One instance's containment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Containment {
    uid: u32,
    root: Option<RootMode>,
    mode: Mode,
}

impl Containment {
    pub fn on(uid: u32, root: Option<RootMode>, plan: ContainPlan, tmp: PathBuf) -> Containment {
        Containment {
            uid,
            root,
            mode: Mode::On {
                plan: Arc::new(plan),
                tmp,
            },
        }
    }

    pub fn off(uid: u32, root: Option<RootMode>, by: Option<Arc<str>>) -> Containment {
        Containment {
            uid,
            root,
            mode: Mode::Off { by },
        }
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn root(&self) -> Option<RootMode> {
        self.root
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::On { .. } => "on",
            Mode::Off { .. } => "off",
        }
    }

    pub fn off_by(&self) -> Option<&str> {
        match &self.mode {
            Mode::Off { by } => by.as_deref(),
            Mode::On { .. } => None,
        }
    }

    pub fn plan(&self) -> Option<&ContainPlan> {
        match &self.mode {
            Mode::On { plan, .. } => Some(plan),
            Mode::Off { .. } => None,
        }
    }

    pub fn tmp(&self) -> Option<&Path> {
        match &self.mode {
            Mode::On { tmp, .. } => Some(tmp),
            Mode::Off { .. } => None,
        }
    }

    pub fn landlock(&self) -> Option<LandlockSpec> {
        self.plan().map(|p| p.landlock.clone())
    }
}

/// Instances by cgroup id.
#[derive(Default)]
pub struct Contained {
    by_id: RwLock<HashMap<u64, Containment>>,
    /// Ended instances, kept as long as the registry names them: a refusal
    /// read after the agent is gone still names the rule that made it.
    ended: RwLock<HashMap<u64, (Containment, Instant)>>,
}

impl Contained {
    pub fn insert(&self, cgroup_id: u64, c: Containment) {
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cgroup_id, c);
    }

    pub fn get(&self, cgroup_id: u64) -> Option<Containment> {
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cgroup_id)
            .cloned()
    }

    /// A live instance's containment, or an ended one's for
    /// [`ENDED_KEPT_FOR`] after it ended. For records of what happened.
    pub fn get_recent(&self, cgroup_id: u64) -> Option<Containment> {
        self.get(cgroup_id).or_else(|| {
            self.ended
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&cgroup_id)
                .map(|(c, _)| c.clone())
        })
    }

    /// Forgets an instance whose cgroup is gone; returns what it had.
    pub fn take(&self, cgroup_id: u64) -> Option<Containment> {
        let c = self
            .by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&cgroup_id)?;
        let now = Instant::now();
        let mut ended = self.ended.write().unwrap_or_else(|e| e.into_inner());
        ended.retain(|_, (_, at)| now.duration_since(*at) < ENDED_KEPT_FOR);
        ended.insert(cgroup_id, (c.clone(), now));
        Some(c)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}
