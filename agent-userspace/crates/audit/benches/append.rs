//! Strict-mode append throughput (records/s) at 1, 16 and 64 concurrent appenders, with and
//! without the write-ahead log. Each
//! appender awaits its own durable commit before submitting the next record, as the proxy does,
//! so higher concurrency measures how well group commit amortizes the fsync.
//! `strict_append_wal_with_outcomes` adds, after each decision, the outcome record the proxy
//! queues when the exchange ends (not awaited): the decision rate with outcomes in the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_audit::{AuditConfig, AuditLog, Decision, EventKind, NewRecord, Outcome, OutcomeState};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn record(task: u64, i: u64) -> NewRecord {
    let mut r = NewRecord::new(EventKind::Request);
    r.agent = Some(format!("bench-{task}"));
    r.action = Some("github.issue.create".into());
    r.params.insert("repo".into(), json!("acme/site"));
    r.params.insert("n".into(), json!(i));
    r.decision = Some(Decision::Allow);
    r.rule = Some("allow-issues".into());
    r.policy_version = Some("v1".into());
    r
}

fn strict_append(c: &mut Criterion) {
    run_group(c, "strict_append", false, false);
}

/// As the daemon runs it: strict, through the write-ahead log.
fn strict_append_wal(c: &mut Criterion) {
    run_group(c, "strict_append_wal", true, false);
}

/// As the daemon runs it once the proxy records outcomes.
fn strict_append_wal_with_outcomes(c: &mut Criterion) {
    run_group(c, "strict_append_wal_with_outcomes", true, true);
}

fn outcome(seq: u64, decision: &NewRecord) -> Outcome {
    Outcome {
        status: Some(201),
        bytes_up: Some(312),
        bytes_down: Some(5120),
        ttfb: Some(Duration::from_millis(80)),
        duration: Some(Duration::from_millis(84)),
        ..Outcome::of(seq, decision, OutcomeState::Completed)
    }
}

fn run_group(c: &mut Criterion, name: &str, wal: bool, outcomes: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(redb::Database::create(dir.path().join("bench.redb")).expect("db"));
    let cfg = AuditConfig {
        wal: wal.then(|| dir.path().join("audit.wal")),
        ..AuditConfig::default()
    };
    let log = AuditLog::open(db, cfg).expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for concurrency in [1u64, 16, 64] {
        group.bench_with_input(
            BenchmarkId::from_parameter(concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    let per_task = iters.div_ceil(concurrency).max(1);
                    let log = log.clone();
                    rt.block_on(async move {
                        let started = Instant::now();
                        let mut set = tokio::task::JoinSet::new();
                        for t in 0..concurrency {
                            let log = log.clone();
                            set.spawn(async move {
                                for i in 0..per_task {
                                    let rec = record(t, i);
                                    let done = outcomes.then(|| rec.clone());
                                    let seq = log.append(&rec).await.expect("append");
                                    if let Some(decision) = done {
                                        log.append_outcome(outcome(seq, &decision));
                                    }
                                }
                            });
                        }
                        while let Some(r) = set.join_next().await {
                            r.expect("task");
                        }
                        // Scale to the requested iteration count (tasks may overshoot).
                        started
                            .elapsed()
                            .mul_f64(iters as f64 / (per_task * concurrency) as f64)
                    })
                });
            },
        );
    }
    group.finish();
    log.shutdown().expect("shutdown");
}

criterion_group!(
    benches,
    strict_append,
    strict_append_wal,
    strict_append_wal_with_outcomes
);
criterion_main!(benches);
