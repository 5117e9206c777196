//! Bursts of reset probes (`request::probes`), per agent run and
//! destination, and their summary records. A burst ends after
//! `burst::QUIET` without a probe; one that goes on is summed up every
//! `burst::EVERY`. The table is bounded: past `MAX_BURSTS` open bursts a
//! probe is recorded on its own, as before coalescing.
use std::{collections::HashMap, net::SocketAddr, sync::Mutex, time::Instant};

use cordon_audit::{Decision, EventKind, NewRecord};
use serde_json::json;

use super::{
    Shared,
    caps::burst::{Burst, Hit, Summary},
};
use crate::{
    cgroup::{AgentPath, run_id},
    request::{
        probes::{ProbeAnswer, ProbeHit},
        record::attributed,
    },
};

const MAX_BURSTS: usize = 10_000;

struct Open {
    agent: AgentPath,
    answer: ProbeAnswer,
    burst: Burst,
}

#[derive(Default)]
pub struct ProbeBursts {
    open: Mutex<HashMap<(String, SocketAddr), Open>>,
}

/// A summary record due.
#[derive(Debug)]
pub struct Due {
    pub agent: AgentPath,
    pub dst: SocketAddr,
    pub answer: ProbeAnswer,
    pub summary: Summary,
}

impl ProbeBursts {
    pub fn hit(
        &self,
        agent: &AgentPath,
        dst: SocketAddr,
        answer: ProbeAnswer,
        now: Instant,
    ) -> ProbeHit {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let key = (run_id(agent), dst);
        if let Some(o) = open.get_mut(&key) {
            return match o.burst.hit(now) {
                Hit::Opens => ProbeHit::Record,
                Hit::Counted => ProbeHit::Counted,
            };
        }
        if open.len() >= MAX_BURSTS {
            return ProbeHit::Record;
        }
        let mut burst = Burst::default();
        burst.hit(now);
        open.insert(
            key,
            Open {
                agent: agent.clone(),
                answer,
                burst,
            },
        );
        ProbeHit::Record
    }

    /// The summaries due at `now`; ended bursts are forgotten.
    pub fn due(&self, now: Instant) -> Vec<Due> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        open.retain(|(_, dst), o| {
            if let Some(summary) = o.burst.tick(now) {
                due.push(Due {
                    agent: o.agent.clone(),
                    dst: *dst,
                    answer: o.answer.clone(),
                    summary,
                });
            }
            o.burst.is_open()
        });
        due
    }
}

pub async fn sweep_loop(d: Shared) {
    super::caps::summary::every_tick(d, |d, now| {
        let version = d.policy.version();
        d.probes
            .due(now)
            .into_iter()
            .map(|due| {
                let about = format!(
                    "reset probes of {} to {} ({} counted)",
                    due.agent.chain_display(),
                    due.dst,
                    due.summary.refused
                );
                (record(&due, &version), about)
            })
            .collect()
    })
    .await
}

/// The summary record of one burst: a `tcp.connect` under the rule the
/// burst's first probe was answered by, with the count.
pub fn record(due: &Due, policy_version: &str) -> NewRecord {
    let s = &due.summary;
    let state = s.state();
    let mut params = serde_json::Map::new();
    params.insert("ip".into(), json!(due.dst.ip().to_string()));
    params.insert("port".into(), json!(due.dst.port()));
    params.insert("reset_probes".into(), json!(s.refused));
    s.insert_params(&mut params);
    NewRecord {
        action: Some("tcp.connect".into()),
        params,
        decision: Some(if due.answer.allowed {
            Decision::Allow
        } else {
            Decision::Deny
        }),
        rule: Some(due.answer.rule.to_string()),
        reason: Some(format!(
            "burst {state}: {} more connections to {} reset before their first byte, {} in {:.1} s in all; nothing was forwarded",
            s.refused,
            due.dst,
            s.total,
            s.lasted.as_secs_f64()
        )),
        policy_version: Some(policy_version.to_string()),
        ..attributed(&due.agent, EventKind::TcpConnect)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::daemon::caps::burst::QUIET;

    fn agent(instance: &str) -> AgentPath {
        AgentPath {
            chain: vec!["bot".into()],
            instances: vec![instance.into()],
        }
    }

    fn answer() -> ProbeAnswer {
        ProbeAnswer {
            rule: Arc::from("db"),
            allowed: true,
        }
    }

    #[test]
    fn a_loop_to_one_destination_is_one_record_and_one_summary_with_the_count() {
        let p = ProbeBursts::default();
        let dst: SocketAddr = "10.0.0.5:5432".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(p.hit(&agent("1"), dst, answer(), t0), ProbeHit::Record);
        for i in 1..500u64 {
            let at = t0 + Duration::from_millis(i);
            assert_eq!(p.hit(&agent("1"), dst, answer(), at), ProbeHit::Counted);
        }
        assert!(
            p.due(t0 + Duration::from_millis(600)).is_empty(),
            "still going"
        );
        let due = p.due(t0 + Duration::from_millis(499) + QUIET);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].summary.refused, 499);
        assert_eq!(due[0].summary.total, 500);
        let rec = record(&due[0], "v1");
        assert_eq!(rec.kind, EventKind::TcpConnect);
        assert_eq!(rec.params["reset_probes"], json!(499));
        assert_eq!(rec.params["port"], json!(5432));
        assert_eq!(rec.rule.as_deref(), Some("db"));
        assert_eq!(rec.decision, Some(Decision::Allow));
        // Ended and forgotten: the next probe opens a new burst.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.hit(&agent("1"), dst, answer(), later), ProbeHit::Record);
    }

    #[test]
    fn each_destination_and_each_run_has_its_own_burst() {
        let p = ProbeBursts::default();
        let t0 = Instant::now();
        let a: SocketAddr = "10.0.0.5:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(p.hit(&agent("1"), a, answer(), t0), ProbeHit::Record);
        assert_eq!(p.hit(&agent("1"), b, answer(), t0), ProbeHit::Record);
        assert_eq!(p.hit(&agent("2"), a, answer(), t0), ProbeHit::Record);
        assert_eq!(p.hit(&agent("1"), a, answer(), t0), ProbeHit::Counted);
    }

    #[test]
    fn a_single_probe_needs_no_summary() {
        let p = ProbeBursts::default();
        let t0 = Instant::now();
        let dst: SocketAddr = "10.0.0.5:22".parse().unwrap();
        p.hit(&agent("1"), dst, answer(), t0);
        assert!(p.due(t0 + QUIET).is_empty());
        assert!(p.open.lock().unwrap().is_empty(), "forgotten");
    }

    #[test]
    fn past_the_bound_every_probe_is_recorded_on_its_own() {
        let p = ProbeBursts::default();
        let t0 = Instant::now();
        for port in 0..MAX_BURSTS as u16 {
            let dst = SocketAddr::from(([10, 0, 0, 1], port));
            p.hit(&agent("1"), dst, answer(), t0);
        }
        let dst = SocketAddr::from(([10, 0, 0, 2], 1));
        assert_eq!(p.hit(&agent("1"), dst, answer(), t0), ProbeHit::Record);
        assert_eq!(p.hit(&agent("1"), dst, answer(), t0), ProbeHit::Record);
    }
}
