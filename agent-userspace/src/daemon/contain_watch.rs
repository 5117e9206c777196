//! Turns the kernel's containment refusals into audit records, and takes a
//! reaped instance's profile and private temp dir down.
use std::time::Duration;

use super::{Shared, repeats::Repeats};
use crate::request::actor::exe_of;
use crate::{
    bpf::contain::{ContainEvent, ContainEventKind, ContainEvents},
    contain::events::{self, Enrichment},
};

pub async fn run(d: Shared, mut events: ContainEvents) {
    let mut repeats = Repeats::default();
    let mut lost_reported = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Ok(ev) => {
                    if repeats.first(format!("{}:{:?}", ev.pid, ev.kind)) {
                        record(&d, &ev).await;
                    }
                }
                Err(e) => {
                    tracing::error!("containment events: {e}; refusals still hold but are no longer recorded");
                    return;
                }
            },
            _ = tick.tick() => {
                repeats.prune();
                lost_reported = report_lost(&d, lost_reported).await;
            }
        }
    }
}

async fn record(d: &Shared, ev: &ContainEvent) {
    // Read after the instance ended, the event still names it.
    let agent = d.registry.lookup_recent(ev.cgroup_id);
    let plan_of = agent
        .as_ref()
        .and_then(|_| d.contained.get_recent(ev.cgroup_id));
    let target = match &ev.kind {
        ContainEventKind::Ptrace { target_pid, .. }
        | ContainEventKind::Signal { target_pid, .. } => Some(*target_pid),
        _ => None,
    };
    let extra = Enrichment {
        exe: exe_of(ev.pid),
        target_exe: target.and_then(exe_of),
    };
    let rec = events::record(
        ev,
        agent.as_ref(),
        plan_of.as_ref().and_then(|c| c.plan()),
        extra,
        Some(d.policy.version()),
    );
    if let Err(e) = d.audit.append(&rec).await {
        tracing::error!(
            cgroup_id = ev.cgroup_id,
            pid = ev.pid,
            "recording a containment refusal failed: {e}"
        );
    }
}

/// A full ring buffer loses events, never refusals: say so in the trail.
async fn report_lost(d: &Shared, reported: u64) -> u64 {
    let Ok(kernel) = &d.contain_kernel else {
        return reported;
    };
    let lost = match kernel.lost_events() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("reading the lost-event counter: {e}");
            return reported;
        }
    };
    if lost <= reported {
        return reported;
    }
    let mut params = serde_json::Map::new();
    params.insert("source".into(), "ring-buffer".into());
    params.insert("lost".into(), (lost - reported).into());
    let rec = cordon_audit::NewRecord {
        action: Some("contain.events_lost".into()),
        params,
        reason: Some(
            "the kernel's event buffer was full; those refusals held but are not itemised".into(),
        ),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::ContainRefused)
    };
    match d.audit.append(&rec).await {
        Ok(_) => lost,
        Err(e) => {
            tracing::error!("recording lost containment events failed: {e}");
            reported
        }
    }
}

/// At start: takes back the instances an earlier daemon launched, and
/// cleans up after those that ended while no daemon was running.
pub fn restore(d: &Shared) {
    for (id, c) in super::contained_store::load_all(&d.cfg.paths.state_dir) {
        d.contained.insert(id, c);
    }
    forget_gone(d);
}

/// Forgets every contained instance whose cgroup no longer exists.
pub fn forget_gone(d: &Shared) {
    let live: std::collections::HashSet<u64> = d
        .registry
        .snapshot()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for id in d.contained.ids() {
        if !live.contains(&id) {
            forget(d, id);
        }
    }
}

/// Called for every instance cgroup the reaper removed.
pub fn forget(d: &Shared, cgroup_id: u64) {
    if let Some(c) = d.contained.take(cgroup_id) {
        tear_down(d, cgroup_id, &c);
    }
}

/// Everything an instance's containment left behind: its saved record, its
/// kernel profile and its private temp dir. For an instance that ended, and
/// for a launch that failed after they were made.
pub fn tear_down(d: &Shared, cgroup_id: u64, c: &super::contained::Containment) {
    super::contained_store::remove(&d.cfg.paths.state_dir, cgroup_id);
    if let Ok(kernel) = &d.contain_kernel
        && let Err(e) = kernel.remove(cgroup_id)
    {
        tracing::warn!(cgroup_id, "removing an instance's containment profile: {e}");
    }
    if let Some(tmp) = c.tmp() {
        super::launch_fs::remove_tmp(tmp);
    }
}
