//! Pairs each Landlock refusal with the process that made it (the SYSCALL
//! record of the same audit event) and with its agent (from that process,
//! or from the domain's creator), then writes the `contain.refused` record.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use super::{Shared, landlock_audit::Msg, repeats::Repeats};
use crate::{
    cgroup::AgentPath,
    contain::landlock_log::{self, Access, Refusal, Syscall},
};

/// How long a refusal waits for its SYSCALL record (written when the
/// system call returns) before it is recorded without it.
const SUBJECT_FOR: Duration = Duration::from_millis(300);
/// A refusal whose agent is still unknown after this long (its process is
/// gone and its domain predates this daemon) is recorded without one.
const PENDING_FOR: Duration = Duration::from_secs(2);

struct Refused {
    access: Access,
    subject: Option<Syscall>,
}

#[derive(Clone)]
struct Known {
    agent: Option<AgentPath>,
    cgroup_id: Option<u64>,
}

#[derive(Default)]
struct Pairing {
    domains: HashMap<u64, Known>,
    awaiting: HashMap<u64, (Instant, Access)>,
    pending: Vec<(Instant, Refused)>,
    repeats: Repeats,
}

pub(super) async fn record_loop(d: Shared, mut rx: mpsc::Receiver<Msg>) {
    let mut p = Pairing::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Access(a)) => {
                    p.awaiting.insert(a.serial, (Instant::now(), a));
                }
                Some(Msg::Syscall(sc)) => {
                    if let Some((_, access)) = p.awaiting.remove(&sc.serial) {
                        attribute(&d, &mut p, Refused { access, subject: Some(sc) }).await;
                    }
                }
                Some(Msg::Domain(dom)) => {
                    let known = dom.pid.map_or(
                        Known { agent: None, cgroup_id: None },
                        |pid| who(&d, pid, None),
                    );
                    p.domains.insert(dom.domain, known);
                    let (ready, wait): (Vec<_>, Vec<_>) = p
                        .pending
                        .drain(..)
                        .partition(|(_, r)| r.access.domain == dom.domain);
                    p.pending = wait;
                    for (_, r) in ready {
                        attribute(&d, &mut p, r).await;
                    }
                }
                None => return,
            },
            _ = tick.tick() => flush(&d, &mut p).await,
        }
    }
}

async fn flush(d: &Shared, p: &mut Pairing) {
    let stale: Vec<u64> = p
        .awaiting
        .iter()
        .filter(|(_, (t, _))| t.elapsed() > SUBJECT_FOR)
        .map(|(k, _)| *k)
        .collect();
    for serial in stale {
        if let Some((_, access)) = p.awaiting.remove(&serial) {
            attribute(
                d,
                p,
                Refused {
                    access,
                    subject: None,
                },
            )
            .await;
        }
    }
    let (old, keep): (Vec<_>, Vec<_>) = p
        .pending
        .drain(..)
        .partition(|(t, _)| t.elapsed() > PENDING_FOR);
    p.pending = keep;
    for (_, r) in old {
        record(d, &r, None, &mut p.repeats).await;
    }
    p.repeats.prune();
}

/// The agent: from the calling process while it is still there, else
/// from the domain's creator; a refusal whose domain is not yet named waits.
async fn attribute(d: &Shared, p: &mut Pairing, r: Refused) {
    if let Some(sc) = &r.subject {
        let k = who(d, sc.pid, sc.ppid);
        if k.agent.is_some() {
            record(d, &r, Some(&k), &mut p.repeats).await;
            return;
        }
    }
    match p.domains.get(&r.access.domain).cloned() {
        Some(k) => record(d, &r, Some(&k), &mut p.repeats).await,
        None => p.pending.push((Instant::now(), r)),
    }
}

/// The agent a process belongs to. A live process is named by its own
/// cgroup. One that is gone (the kernel's records can be read after a
/// short-lived agent exited) is named only if it was an instance's launcher
/// (which became the agent and created its Landlock domain), or else
/// through its `parent` the same way: a root agent in its user namespace is
/// the launcher's child, and it, not the launcher, created the domain.
fn who(d: &Shared, pid: u32, parent: Option<u32>) -> Known {
    let tree = d.registry.tree();
    let own = match tree.locate_pid(pid as i32) {
        // An exiting process can outlive its cgroup's directory.
        Ok(Some(a)) => crate::cgroup::tree::cgroup_id(&tree.dir_of(&a)).ok(),
        Ok(None) => {
            return Known {
                agent: None,
                cgroup_id: None,
            };
        }
        Err(_) => None,
    };
    let cgroup_id = own
        .or_else(|| d.registry.launched_by(pid))
        .or_else(|| parent.and_then(|p| who(d, p, None).cgroup_id));
    Known {
        agent: cgroup_id.and_then(|id| d.registry.lookup_recent(id)),
        cgroup_id,
    }
}

async fn record(d: &Shared, r: &Refused, known: Option<&Known>, repeats: &mut Repeats) {
    let a = &r.access;
    let pid = r.subject.as_ref().map(|s| s.pid);
    let key = format!(
        "{:x}:{pid:?}:{:?}:{:?}:{:?}",
        a.domain, a.blockers, a.path, a.opid
    );
    if !repeats.first(key) {
        return;
    }
    let agent = known.and_then(|k| k.agent.as_ref());
    let cgroup_id = known.and_then(|k| k.cgroup_id);
    let plan = cgroup_id.and_then(|id| d.contained.get_recent(id));
    let refusal = landlock_log::classify(a);
    let target_exe = match &refusal {
        Refusal::Process {
            target_pid: Some(t),
            ..
        } => crate::request::actor::exe_of(*t),
        _ => None,
    };
    let mut rec = crate::contain::events::landlock_record(
        &refusal,
        a.domain,
        agent,
        cgroup_id,
        plan.as_ref().and_then(|c| c.plan()),
        target_exe,
        Some(d.policy.version()),
    );
    if let Some(sc) = &r.subject {
        rec.pid = Some(sc.pid);
        rec.uid = sc.uid;
        rec.exe = sc.exe.clone();
    }
    if let Err(e) = d.audit.append(&rec).await {
        tracing::error!(
            domain = a.domain,
            "recording a Landlock refusal failed: {e}"
        );
    }
}
