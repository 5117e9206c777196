use std::time::{Duration, Instant};

use super::*;

fn agent(name: &str, instance: &str) -> AgentPath {
    AgentPath {
        chain: vec![name.into()],
        instances: vec![instance.into()],
    }
}

fn caps(nofile: u64) -> Arc<Caps> {
    Caps::new(CapDefaults::default(), Budget::plan(nofile, 0))
}

fn conn_cap(n: u32) -> CapOverrides {
    CapOverrides {
        connections: Some(n),
        ..CapOverrides::default()
    }
}

#[test]
fn one_agent_at_its_cap_leaves_another_its_own() {
    let c = caps(1 << 20);
    let (flood, calm) = (agent("flood", "1"), agent("calm", "1"));
    let l = c.limits(&conn_cap(3));
    let now = Instant::now();
    let held: Vec<Permit> = (0..3)
        .map(|_| c.connection(&flood, l, now).unwrap())
        .collect();
    let hit = c.connection(&flood, l, now).unwrap_err();
    assert_eq!(
        (hit.cap, hit.limit, hit.from_policy, hit.opens_burst),
        (Cap::Connections, 3, true, true)
    );
    assert!(
        !c.connection(&flood, l, now).unwrap_err().opens_burst,
        "the rest are counted"
    );
    assert!(c.connection(&calm, l, now).is_ok());
    drop(held);
    assert!(
        c.connection(&flood, l, now).is_ok(),
        "released when dropped"
    );
}

#[test]
fn the_daemon_ceiling_is_shared_and_refuses_past_the_budget() {
    // 16 descriptors, none reserved: 8 connections in all, 2 per agent.
    let c = caps(16);
    assert_eq!(
        (c.budget().daemon_connections, c.budget().agent_ceiling),
        (8, 2)
    );
    let l = c.limits(&CapOverrides::default());
    assert_eq!(
        l.connections, 2,
        "the default is clamped to the agent ceiling"
    );
    let now = Instant::now();
    let mut held = Vec::new();
    for i in 0..4 {
        let a = agent("bot", &i.to_string());
        held.push(c.connection(&a, l, now).unwrap());
        held.push(c.connection(&a, l, now).unwrap());
    }
    assert_eq!(c.connections_held(), 8);
    let hit = c.connection(&agent("late", "1"), l, now).unwrap_err();
    assert_eq!(hit.cap, Cap::DaemonConnections);
    held.pop();
    assert!(c.connection(&agent("late", "1"), l, now).is_ok());
}

#[test]
fn a_burst_of_refusals_comes_due_once_with_its_count_and_idle_ledgers_go() {
    let c = caps(1 << 20);
    let a = agent("flood", "1");
    let l = c.limits(&conn_cap(1));
    let t0 = Instant::now();
    let _held = c.connection(&a, l, t0).unwrap();
    let opened = (0..500)
        .filter(|_| c.connection(&a, l, t0).unwrap_err().opens_burst)
        .count();
    assert_eq!(opened, 1);
    assert!(c.due(t0 + Duration::from_millis(500)).is_empty());
    let due = c.due(t0 + burst::QUIET);
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].cap, due[0].limit, due[0].summary.refused),
        (Cap::Connections, 1, 499)
    );
    drop(_held);
    let later = t0 + burst::QUIET * 2;
    assert!(c.due(later).is_empty());
    assert!(c.lock().ledgers.is_empty(), "nothing held, nothing kept");
}

#[test]
fn request_bytes_and_approvals_are_released_with_their_permits() {
    let c = caps(1 << 20);
    let a = agent("bot", "1");
    let l = c.limits(&CapOverrides {
        pending_approvals: Some(1),
        request_bytes_in_flight: Some(10),
        ..CapOverrides::default()
    });
    let now = Instant::now();
    let p = c.approval(&a, l, now).unwrap();
    assert_eq!(
        c.approval(&a, l, now).unwrap_err().cap,
        Cap::PendingApprovals
    );
    drop(p);
    assert!(c.approval(&a, l, now).is_ok());
    let b = c.request_bytes(&a, l, 8, now).unwrap();
    assert_eq!(
        c.request_bytes(&a, l, 3, now).unwrap_err().cap,
        Cap::RequestBytes
    );
    assert!(
        c.request_bytes(&a, l, 0, now).is_ok(),
        "no body, nothing held"
    );
    drop(b);
    assert!(c.request_bytes(&a, l, 10, now).is_ok());
}
