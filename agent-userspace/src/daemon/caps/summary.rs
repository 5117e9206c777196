//! The summary records of cap bursts: once a second the ledgers say which
//! bursts ended (or have gone on for a while), and each gets one
//! `limit.hit` record with the number of refusals it covers. A summary
//! that cannot be written is logged at error level; the refusals it
//! counts were refused all the same.
use std::time::{Duration, Instant};

use cordon_audit::{Decision, EventKind, NewRecord};
use serde_json::json;

use super::Due;
use crate::{daemon::Shared, request::record::attributed};

const TICK: Duration = Duration::from_secs(1);

pub async fn sweep_loop(d: Shared) {
    every_tick(d, |d, now| {
        let version = d.policy.version();
        d.caps
            .due(now)
            .into_iter()
            .map(|due| {
                let about = format!(
                    "cap {} of {} ({} refused)",
                    due.cap.name(),
                    due.agent.chain_display(),
                    due.summary.refused
                );
                (record(&due, &version), about)
            })
            .collect()
    })
    .await
}

/// Once a second, the summary records `due` says are due, each with what
/// it is about for the error log. Shared by the cap bursts and the reset
/// probes' bursts (`daemon/probes`). A summary that cannot be written is
/// logged at error level: what it counts was refused (or went nowhere)
/// all the same.
pub async fn every_tick(d: Shared, due: impl Fn(&Shared, Instant) -> Vec<(NewRecord, String)>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (rec, about) in due(&d, Instant::now()) {
            if let Err(e) = d.audit.append(&rec).await {
                tracing::error!(summary = %about, "a burst's summary record could not be written: {e}");
            }
        }
    }
}

/// The summary record of one burst.
pub fn record(due: &Due, policy_version: &str) -> NewRecord {
    let s = &due.summary;
    let state = s.state();
    let source = if due.from_policy {
        "set by policy"
    } else {
        "daemon default"
    };
    let mut params = serde_json::Map::new();
    params.insert("cap".into(), json!(due.cap.name()));
    params.insert("limit".into(), json!(due.limit));
    params.insert("refused".into(), json!(s.refused));
    s.insert_params(&mut params);
    NewRecord {
        action: Some("cap.burst".into()),
        params,
        decision: Some(Decision::Deny),
        rule: Some(format!("cap:{}", due.cap.name())),
        reason: Some(format!(
            "burst {state}: {} more refusals over the cap of {} {} ({source}), {} in {:.1} s in all",
            s.refused,
            due.limit,
            due.cap.what(),
            s.total,
            s.lasted.as_secs_f64()
        )),
        policy_version: Some(policy_version.to_string()),
        ..attributed(&due.agent, EventKind::LimitHit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cgroup::AgentPath, daemon::caps::Summary, request::caps::Cap};

    #[test]
    fn a_summary_names_the_cap_and_carries_the_count() {
        let due = Due {
            agent: AgentPath {
                chain: vec!["flood".into()],
                instances: vec!["7".into()],
            },
            cap: Cap::Connections,
            limit: 20,
            from_policy: true,
            summary: Summary {
                refused: 2_979,
                total: 2_980,
                lasted: Duration::from_millis(4_200),
                ended: true,
            },
        };
        let r = record(&due, "abc");
        assert_eq!(r.kind, EventKind::LimitHit);
        assert_eq!(r.rule.as_deref(), Some("cap:connections"));
        assert_eq!(r.params["refused"], json!(2_979));
        assert_eq!(r.params["cap"], json!("connections"));
        assert_eq!(r.chain.as_deref(), Some("flood"));
        assert!(
            r.reason
                .unwrap()
                .starts_with("burst ended: 2979 more refusals")
        );
    }
}
