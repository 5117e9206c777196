//! The kernel half of a plan, in the shape the eBPF maps take, and the
//! daemon's [`KernelLayer`] over those maps.
use super::plan::ContainPlan;
use crate::{
    bpf::contain::{ContainMaps, FileRule, KernelProfile},
    daemon::contained::KernelLayer,
};

/// Every file rule covers its path and what lies below it; the control
/// socket and any allowed pathname sockets go to the socket allowlist.
pub fn profile(plan: &ContainPlan) -> KernelProfile {
    KernelProfile {
        files: plan
            .files
            .iter()
            .map(|r| FileRule {
                path: r.path.clone(),
                subtree: true,
                deny: r.deny,
            })
            .collect(),
        unix_allow: plan.unix_allow.clone(),
    }
}

impl KernelLayer for ContainMaps {
    fn install(&self, cgroup_id: u64, plan: &ContainPlan) -> Result<(), String> {
        ContainMaps::install(self, cgroup_id, &profile(plan)).map_err(|e| e.to_string())
    }

    fn remove(&self, cgroup_id: u64) -> Result<(), String> {
        ContainMaps::remove(self, cgroup_id).map_err(|e| e.to_string())
    }

    fn lost_events(&self) -> Result<u64, String> {
        ContainMaps::lost_events(self).map_err(|e| e.to_string())
    }
}
