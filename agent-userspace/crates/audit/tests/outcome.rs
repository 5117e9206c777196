//! Outcome records: chained after their decision, linked by `decision_seq`, and at start every
//! decision left without one gets `aborted` (the last run stopped cleanly) or `unknown` (it
//! crashed, or the decision predates outcomes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{open_db, open_log, temp_db};
use cordon_audit::{
    AuditConfig, AuditLog, AuditRecord, Decision, EventKind, ExportFormat, LlmUsage, NewRecord,
    Outcome, OutcomeState, export, iter_from, reconcile_outcomes, record_hash, verify,
};
use redb::Database;
use serde_json::Value;

fn forwarded(agent: &str, i: u64) -> NewRecord {
    NewRecord {
        agent: Some(agent.into()),
        instance: Some("inst-1".into()),
        chain: Some(format!("orch/{agent}")),
        connector: Some("github".into()),
        action: Some("github.pr.create".into()),
        decision: Some(Decision::Allow),
        http_method: Some("POST".into()),
        http_path: Some(format!("/repos/acme/site/pulls/{i}")),
        ..NewRecord::new(EventKind::Request)
    }
}

fn denied() -> NewRecord {
    NewRecord {
        decision: Some(Decision::Deny),
        ..forwarded("bot", 0)
    }
}

fn records(db: &Database) -> Vec<AuditRecord> {
    iter_from(db, 1).unwrap().map(Result::unwrap).collect()
}

fn outcomes(db: &Database) -> Vec<AuditRecord> {
    records(db)
        .into_iter()
        .filter(|r| r.kind == EventKind::Outcome)
        .collect()
}

/// Waits until the writer has everything queued so far in redb (outcomes are not acked).
async fn settle(log: &AuditLog, seq: u64) {
    let mut committed = log.subscribe();
    tokio::time::timeout(Duration::from_secs(5), committed.wait_for(|&c| c >= seq))
        .await
        .expect("outcome written")
        .unwrap();
}

#[tokio::test]
async fn an_outcome_is_chained_after_its_decision_with_every_field() {
    let t = temp_db();
    let db = open_db(&t.path);
    let log = open_log(&db, AuditConfig::default());
    let seq = log.append(&forwarded("bot", 1)).await.unwrap();
    log.append_outcome(Outcome {
        status: Some(201),
        bytes_up: Some(120),
        bytes_down: Some(2048),
        ttfb: Some(Duration::from_millis(40)),
        duration: Some(Duration::from_millis(84)),
        llm: Some(LlmUsage {
            tokens_in: Some(1200),
            tokens_out: Some(345),
            cost_usd: Some(0.012_34),
        }),
        mcp_error: Some(false),
        ..Outcome::of(seq, &forwarded("bot", 1), OutcomeState::Completed)
    });
    settle(&log, seq + 1).await;
    log.shutdown().unwrap();

    let all = records(&db);
    assert_eq!(all.len(), 2);
    let o = &all[1];
    assert_eq!(o.kind, EventKind::Outcome);
    assert_eq!(o.decision_seq, Some(seq));
    assert_eq!(o.prev_hash, all[0].hash, "chained right after its decision");
    assert_eq!(o.outcome, Some(OutcomeState::Completed));
    assert_eq!(o.upstream_status, Some(201));
    assert_eq!((o.bytes_up, o.bytes_down), (Some(120), Some(2048)));
    assert_eq!(
        (o.ttfb_us, o.total_latency_us),
        (Some(40_000), Some(84_000))
    );
    assert_eq!((o.tokens_in, o.tokens_out), (Some(1200), Some(345)));
    assert_eq!(o.cost_usd, Some(0.012_34));
    assert_eq!(o.mcp_error, Some(false));
    assert_eq!(o.agent.as_deref(), Some("bot"));
    assert!(verify(&db).unwrap().is_ok());

    // The exported line re-hashes on its own, float cost included.
    let mut out = Vec::new();
    export(&db, None, None, ExportFormat::Jsonl, &mut out).unwrap();
    let line = String::from_utf8(out).unwrap();
    let last: Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    let map = last.as_object().unwrap();
    assert_eq!(record_hash(map), map["hash"].as_str().unwrap());
    assert_eq!(map["cost_usd"], 0.012_34);
}

/// Opens, reconciles, appends `decisions` (outcomes for those in `answered`), and returns the
/// log still open.
async fn run_with(
    db: &Arc<Database>,
    decisions: &[NewRecord],
    answered: &[usize],
) -> (AuditLog, Vec<u64>) {
    let log = open_log(db, AuditConfig::default());
    reconcile_outcomes(&log).await.unwrap();
    let mut seqs = Vec::new();
    for d in decisions {
        seqs.push(log.append(d).await.unwrap());
    }
    for &i in answered {
        log.append_outcome(Outcome {
            status: Some(200),
            ..Outcome::of(seqs[i], &decisions[i], OutcomeState::Completed)
        });
    }
    let head = seqs.last().copied().unwrap_or(0) + answered.len() as u64;
    settle(&log, head).await;
    (log, seqs)
}

#[tokio::test]
async fn after_a_clean_stop_open_decisions_are_aborted_once() {
    let t = temp_db();
    let db = open_db(&t.path);
    let decisions = [
        forwarded("a", 1),
        forwarded("b", 2),
        denied(),
        forwarded("c", 3),
    ];
    let (log, seqs) = run_with(&db, &decisions, &[1]).await;
    log.shutdown().unwrap();
    drop(log);

    let log = open_log(&db, AuditConfig::default());
    let report = reconcile_outcomes(&log).await.unwrap();
    assert_eq!(
        report.marked,
        [seqs[0], seqs[3]],
        "answered and denied ones are left alone"
    );
    assert_eq!(report.state, Some(OutcomeState::Aborted));
    let again = reconcile_outcomes(&log).await.unwrap();
    assert!(
        again.marked.is_empty(),
        "a second start marks nothing: {again:?}"
    );
    log.shutdown().unwrap();

    let given: Vec<(Option<u64>, Option<OutcomeState>, Option<String>)> = outcomes(&db)
        .into_iter()
        .filter(|o| o.upstream_status.is_none())
        .map(|o| (o.decision_seq, o.outcome, o.agent.clone()))
        .collect();
    assert_eq!(
        given,
        [
            (Some(seqs[0]), Some(OutcomeState::Aborted), Some("a".into())),
            (Some(seqs[3]), Some(OutcomeState::Aborted), Some("c".into())),
        ]
    );
    assert!(verify(&db).unwrap().is_ok());
}

#[tokio::test]
async fn after_a_crash_open_decisions_are_unknown() {
    let t = temp_db();
    let db = open_db(&t.path);
    let (log, seqs) = run_with(&db, &[forwarded("a", 1), forwarded("b", 2)], &[0]).await;
    // A crash: the writer never gets to stop, so it never marks a clean stop.
    std::mem::forget(log);

    let log = open_log(&db, AuditConfig::default());
    let report = reconcile_outcomes(&log).await.unwrap();
    assert_eq!(report.marked, [seqs[1]]);
    assert_eq!(report.state, Some(OutcomeState::Unknown));
    log.shutdown().unwrap();
    let last = outcomes(&db).pop().unwrap();
    assert_eq!(last.decision_seq, Some(seqs[1]));
    assert!(
        last.error
            .as_deref()
            .unwrap()
            .contains("without a clean stop")
    );
}

#[tokio::test]
async fn decisions_from_before_outcomes_are_unknown_and_marked_once() {
    let t = temp_db();
    let db = open_db(&t.path);
    // An older Cordon: decisions, no outcomes, never reconciled.
    let old = open_log(&db, AuditConfig::default());
    for i in 0..3 {
        old.append(&forwarded("old", i)).await.unwrap();
    }
    old.shutdown().unwrap();
    drop(old);

    let log = open_log(&db, AuditConfig::default());
    let report = reconcile_outcomes(&log).await.unwrap();
    assert_eq!(report.marked, [1, 2, 3]);
    assert_eq!(report.state, Some(OutcomeState::Unknown));
    log.shutdown().unwrap();
    drop(log);
    let log = open_log(&db, AuditConfig::default());
    assert!(reconcile_outcomes(&log).await.unwrap().marked.is_empty());
    log.shutdown().unwrap();
    assert!(
        outcomes(&db)
            .iter()
            .all(|o| o.error.as_deref() == Some("decided before Cordon recorded outcomes"))
    );
}

#[tokio::test]
async fn a_run_with_outcomes_off_writes_none_and_the_next_start_leaves_its_decisions_alone() {
    let t = temp_db();
    let db = open_db(&t.path);
    // A run that records outcomes crashes with one exchange open...
    let (log, on_seqs) = run_with(&db, &[forwarded("a", 1), forwarded("a", 2)], &[0]).await;
    std::mem::forget(log);

    // ...the next, with outcomes off, still closes that gap, and then records none.
    let off = AuditConfig {
        outcomes: false,
        ..AuditConfig::default()
    };
    let log = open_log(&db, off);
    assert!(!log.records_outcomes());
    let report = reconcile_outcomes(&log).await.unwrap();
    assert_eq!(report.marked, [on_seqs[1]]);
    let d = log.append(&forwarded("b", 3)).await.unwrap();
    log.append_outcome(Outcome {
        status: Some(200),
        ..Outcome::new(d, OutcomeState::Completed)
    });
    log.shutdown().unwrap();
    drop(log);
    let written = outcomes(&db);
    assert!(
        written.iter().all(|o| o.decision_seq != Some(d)),
        "{written:?}"
    );

    // A start with outcomes on gives the off run's decision nothing: it never expected one.
    let log = open_log(&db, AuditConfig::default());
    assert!(reconcile_outcomes(&log).await.unwrap().marked.is_empty());
    let d2 = log.append(&forwarded("c", 4)).await.unwrap();
    std::mem::forget(log);
    // ...while that run's own open decisions are reconciled as before.
    let log = open_log(&db, AuditConfig::default());
    assert_eq!(reconcile_outcomes(&log).await.unwrap().marked, [d2]);
    log.shutdown().unwrap();
    assert!(verify(&db).unwrap().is_ok());
}

fn stored(seq: u64, rec: NewRecord) -> AuditRecord {
    AuditRecord {
        seq,
        ts: chrono::Utc::now(),
        record: rec,
        prev_hash: "0".repeat(64),
        hash: "1".repeat(64),
    }
}

#[test]
fn ocsf_marks_outcomes_success_or_failure_by_status_and_state() {
    let dec = forwarded("bot", 1);
    let with = |status: Option<u16>, state| {
        let o = Outcome {
            status,
            duration: Some(Duration::from_millis(84)),
            ..Outcome::of(42, &dec, state)
        };
        cordon_audit::to_ocsf(&stored(43, o.into_record()))
    };
    let ok = with(Some(201), OutcomeState::Completed);
    assert_eq!(
        (ok["status_id"].as_u64(), ok["status"].as_str()),
        (Some(1), Some("Success"))
    );
    assert_eq!(ok["class_uid"], cordon_audit::CLASS_API_ACTIVITY);
    assert_eq!(ok["http_response"]["code"], 201);
    assert_eq!(ok["duration"], 84);
    assert_eq!(
        ok["metadata"]["correlation_uid"], "42",
        "correlated with its decision"
    );
    let not_found = with(Some(404), OutcomeState::Completed);
    assert_eq!(not_found["status_id"], 2);
    assert_eq!(with(None, OutcomeState::Failed)["status_id"], 2);
    assert_eq!(with(None, OutcomeState::Aborted)["status"], "Failure");
    assert_eq!(with(None, OutcomeState::Unknown)["status"], "Unknown");

    let flow = NewRecord {
        action: Some("tcp.connect".into()),
        ..NewRecord::new(EventKind::TcpConnect)
    };
    let closed = cordon_audit::to_ocsf(&stored(
        9,
        Outcome {
            bytes_up: Some(10),
            bytes_down: Some(20),
            ..Outcome::of(8, &flow, OutcomeState::Completed)
        }
        .into_record(),
    ));
    assert_eq!(closed["class_uid"], cordon_audit::CLASS_NETWORK_ACTIVITY);
    assert_eq!(closed["activity_name"], "Close");
    assert_eq!(closed["traffic"]["bytes_out"], 10);
    assert_eq!(closed["status"], "Success");
}

#[test]
fn tail_lines_show_the_outcome_inline() {
    let dec = stored(42, forwarded("bot", 1));
    let out = stored(
        43,
        Outcome {
            status: Some(201),
            duration: Some(Duration::from_millis(84)),
            ..Outcome::of(42, &dec.record, OutcomeState::Completed)
        }
        .into_record(),
    );
    let line = cordon_audit::format_line_with_outcome(&dec, Some(&out));
    assert!(
        line.starts_with("#42 ") && line.ends_with(" → 201 in 84 ms"),
        "{line}"
    );
    let own = cordon_audit::format_line(&out);
    assert!(
        own.contains("OUTCOME bot[orch/bot] github.pr.create of=#42 → 201 in 84 ms"),
        "{own}"
    );
}

#[tokio::test]
async fn verify_tallies_outcomes_and_names_decisions_still_open() {
    let t = temp_db();
    let db = open_db(&t.path);
    let decisions = [
        forwarded("a", 1),
        forwarded("b", 2),
        denied(),
        forwarded("c", 3),
    ];
    let (log, seqs) = run_with(&db, &decisions, &[0]).await;
    log.shutdown().unwrap();
    let report = verify(&db).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.outcomes.completed, 1);
    assert_eq!(report.outcomes.open, 2);
    assert_eq!(report.outcomes.open_seqs, [seqs[1], seqs[3]]);

    let log = open_log(&db, AuditConfig::default());
    reconcile_outcomes(&log).await.unwrap();
    log.shutdown().unwrap();
    let after = verify(&db).unwrap().outcomes;
    assert_eq!((after.aborted, after.open), (2, 0), "{after:?}");
}

/// Holds redb's write lock so the writer stalls on its next commit and the queue fills.
async fn stall_writer(db: &Arc<Database>, log: &AuditLog) -> redb::WriteTransaction {
    let blocker = db.begin_write().unwrap();
    let taken = log.append(&forwarded("a", 1));
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while log.queue_depth() > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the writer never took the record"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let queued = log.append(&forwarded("b", 2));
    assert_eq!(log.queue_depth(), 1, "the queue is full");
    tokio::spawn(async move {
        taken.await.unwrap();
        queued.await.unwrap();
    });
    blocker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_that_meets_a_full_queue_is_written_once_there_is_room() {
    let t = temp_db();
    let db = open_db(&t.path);
    let small = AuditConfig {
        queue_capacity: 1,
        ..AuditConfig::default()
    };
    let log = open_log(&db, small);
    let blocker = stall_writer(&db, &log).await;
    log.append_outcome(Outcome::of(1, &forwarded("a", 1), OutcomeState::Completed));
    assert_eq!(
        log.metrics().rejected_queue_full_total,
        1,
        "it met the full queue"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(blocker);
    settle(&log, 3).await;
    log.shutdown().unwrap();
    let o = outcomes(&db);
    assert_eq!(o.len(), 1);
    assert_eq!((o[0].seq, o[0].decision_seq), (3, Some(1)));
    assert_eq!(log.metrics().outcomes_unrecorded_total, 0);
    assert!(verify(&db).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_that_never_finds_room_is_counted_not_waited_for() {
    let t = temp_db();
    let db = open_db(&t.path);
    let small = AuditConfig {
        queue_capacity: 1,
        ..AuditConfig::default()
    };
    let log = open_log(&db, small);
    let blocker = stall_writer(&db, &log).await;
    let started = std::time::Instant::now();
    log.append_outcome(Outcome::new(1, OutcomeState::Completed));
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "append_outcome returns at once"
    );
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while log.metrics().outcomes_unrecorded_total == 0 {
        assert!(
            std::time::Instant::now() < until,
            "the lost outcome was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(blocker);
    settle(&log, 2).await;
    log.shutdown().unwrap();
    assert!(outcomes(&db).is_empty());
}
