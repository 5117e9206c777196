//! CPU per decision on each side of the audit trail, and how long the append call itself
//! blocks its caller: the numbers behind "fewer wakeups per request" (issue 18).
//!
//! Runs the daemon's shape: one current-thread runtime (a proxy core) with 64 tasks, each
//! appending a decision, awaiting it as the proxy does, then queuing its outcome. Reports,
//! per decision: the runtime thread's CPU (request side), the audit writer thread's CPU,
//! the threads' context switches, and the p50/p99/max time spent inside `append()` before it
//! returns its future (the synchronous part a proxy worker pays inline). Thread CPU comes
//! from /proc/self/task/TID/schedstat (nanoseconds on the CPU).
//!
//! `cargo bench -p cordon-audit --bench cpu` (set CPU_BENCH_DECISIONS to change the count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_audit::{
    AuditConfig, AuditLog, Decision, Durability, EventKind, NewRecord, Outcome, OutcomeState,
};
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
    r.http_method = Some("POST".into());
    r.http_path = Some("/repos/acme/site/issues".into());
    r
}

/// One thread's CPU time and context switches so far.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    switches: u64,
}

fn usage(tid: &str) -> Usage {
    let base = format!("/proc/self/task/{tid}");
    let cpu_ns = std::fs::read_to_string(format!("{base}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("{base}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Usage {
        cpu_ns,
        switches: field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:"),
    }
}

/// The audit writer thread's id (its name, cut to 15 bytes by the kernel).
/// The new thread names itself once it runs: look for a while.
fn writer_tid() -> String {
    for _ in 0..200 {
        for entry in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let tid = entry.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if comm.trim_end().starts_with("cordon-audit") {
                return tid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no audit writer thread");
}

/// Every thread but the writer's: the runtime's (the request side).
struct RequestSide(Vec<String>);

impl RequestSide {
    fn usage(&self) -> Usage {
        self.0
            .iter()
            .map(|t| usage(t))
            .fold(Usage::default(), |a, u| Usage {
                cpu_ns: a.cpu_ns + u.cpu_ns,
                switches: a.switches + u.switches,
            })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn run(name: &str, durability: Durability, decisions: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(redb::Database::create(dir.path().join("bench.redb")).expect("db"));
    let cfg = AuditConfig {
        durability,
        wal: Some(dir.path().join("audit.wal")),
        ..AuditConfig::default()
    };
    let log = AuditLog::open(db, cfg).expect("open");
    // CPU_BENCH_WORKERS=2: the daemon's multi-thread runtime of today, instead of one
    // current-thread runtime (a core of the thread-per-core daemon).
    let workers: usize = std::env::var("CPU_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rt = if workers > 0 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    let writer = writer_tid();
    let me = RequestSide(
        std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|t| *t != writer)
            .collect(),
    );
    let tasks = 64u64;
    let per_task = decisions / tasks;
    let (me0, w0) = (me.usage(), usage(&writer));
    let started = Instant::now();
    let mut inline: Vec<Duration> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let log = log.clone();
            set.spawn(async move {
                let mut took = Vec::with_capacity(per_task as usize);
                for i in 0..per_task {
                    let rec = record(t, i);
                    let decision = rec.clone();
                    let at = Instant::now();
                    let fut = log.append(&rec);
                    took.push(at.elapsed());
                    let seq = fut.await.expect("append");
                    let at = Instant::now();
                    log.append_outcome(Outcome {
                        status: Some(201),
                        bytes_up: Some(312),
                        bytes_down: Some(5120),
                        ..Outcome::of(seq, &decision, OutcomeState::Completed)
                    });
                    took.push(at.elapsed());
                }
                took
            });
        }
        let mut all = vec![];
        while let Some(r) = set.join_next().await {
            all.extend(r.expect("task"));
        }
        all
    });
    let wall = started.elapsed();
    let (me1, w1) = (me.usage(), usage(&writer));
    log.shutdown().expect("shutdown");
    inline.sort();
    let n = (per_task * tasks) as f64;
    let us = |ns: u64| ns as f64 / 1000.0 / n;
    println!(
        "{name}: {n} decisions (+ outcomes), 64 tasks, {}, {:.0} decisions/s\n  \
         request side {:.2} us CPU/decision, writer thread {:.2} us CPU/decision, total {:.2}\n  \
         context switches per decision: runtime thread(s) {:.3}, writer thread {:.3}\n  \
         append()/append_outcome() inline: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        if workers > 0 {
            format!("{workers}-worker runtime")
        } else {
            "one current-thread runtime".into()
        },
        n / wall.as_secs_f64(),
        us(me1.cpu_ns - me0.cpu_ns),
        us(w1.cpu_ns - w0.cpu_ns),
        us(me1.cpu_ns - me0.cpu_ns + w1.cpu_ns - w0.cpu_ns),
        (me1.switches - me0.switches) as f64 / n,
        (w1.switches - w0.switches) as f64 / n,
        percentile(&inline, 0.5).as_secs_f64() * 1e6,
        percentile(&inline, 0.99).as_secs_f64() * 1e6,
        inline.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run this harness-less
    // bench's body beyond a smoke pass.
    let decisions: u64 = std::env::var("CPU_BENCH_DECISIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            64_000
        } else {
            640
        });
    run("strict_wal", Durability::Strict, decisions);
    run(
        "batched_wal",
        Durability::Batched { max_delay_ms: 50 },
        decisions,
    );
}
