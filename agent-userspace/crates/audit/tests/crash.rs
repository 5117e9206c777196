//! A process appending is SIGKILLed; every record it was told is committed must be there
//! afterwards (after replaying the write-ahead log, where there is one), and the chain must
//! verify. Strict without a log, strict with a log whose records never reached a durable redb
//! commit, and batched with a log (acknowledged once written, not synced).
//!
//! The test re-executes its own binary as the child (selected by an environment variable), so
//! the child runs the real library against a real file.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{action_record, open_db, stored_seqs, temp_db};
use cordon_audit::{AuditConfig, AuditLog, Decision, Durability, replay_wal, verify};

const CHILD_ENV: &str = "CORDON_AUDIT_CRASH_CHILD_DB";
const MODE_ENV: &str = "CORDON_AUDIT_CRASH_CHILD_MODE";

#[derive(Clone, Copy, Debug)]
enum Mode {
    Strict,
    StrictWal,
    BatchedWal,
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s {
            "StrictWal" => Mode::StrictWal,
            "BatchedWal" => Mode::BatchedWal,
            _ => Mode::Strict,
        }
    }

    fn config(self, db: &Path) -> AuditConfig {
        let wal = Some(db.with_extension("wal"));
        match self {
            Mode::Strict => AuditConfig::default(),
            // No checkpoint during the test: acknowledged records live only in the log and in
            // non-durable redb commits, which the kill throws away.
            Mode::StrictWal => AuditConfig {
                wal,
                checkpoint_every: Duration::from_secs(3600),
                ..AuditConfig::default()
            },
            Mode::BatchedWal => AuditConfig {
                wal,
                durability: Durability::Batched {
                    max_delay_ms: 3_600_000,
                },
                ..AuditConfig::default()
            },
        }
    }
}

#[test]
fn strict_commits_survive_sigkill() {
    crash_test(Mode::Strict, "strict_commits_survive_sigkill");
}

#[test]
fn strict_records_only_in_the_write_ahead_log_survive_sigkill() {
    crash_test(
        Mode::StrictWal,
        "strict_records_only_in_the_write_ahead_log_survive_sigkill",
    );
}

#[test]
fn batched_records_written_to_the_log_survive_sigkill() {
    crash_test(
        Mode::BatchedWal,
        "batched_records_written_to_the_log_survive_sigkill",
    );
}

fn crash_test(mode: Mode, test_name: &str) {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let mode = Mode::parse(&std::env::var(MODE_ENV).unwrap_or_default());
        run_child(Path::new(&path), mode);
    }

    let tmp = temp_db();
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &tmp.path)
        .env(MODE_ENV, format!("{mode:?}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();

    let mut committed = BTreeSet::new();
    let started = Instant::now();
    while committed.len() < 400 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "child too slow"
        );
        let Some(line) = lines.next() else {
            panic!("child exited early");
        };
        if let Some(seq) = line.expect("read line").strip_prefix("committed ") {
            committed.insert(seq.parse::<u64>().expect("seq"));
        }
    }
    // Kill while its tasks are mid-append; Child::kill sends SIGKILL on Unix.
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    // Lines the child wrote before it died are still in the pipe: they count too.
    for line in lines {
        if let Some(seq) = line.expect("read line").strip_prefix("committed ") {
            committed.insert(seq.parse::<u64>().expect("seq"));
        }
    }

    let db = open_db(&tmp.path);
    if let Some(wal) = &mode.config(&tmp.path).wal {
        let r = replay_wal(&db, wal).expect("replay");
        if matches!(mode, Mode::StrictWal | Mode::BatchedWal) {
            assert!(
                r.applied > 0,
                "the kill lost nothing that needed the log: {r:?}"
            );
        }
    }
    let report = verify(&db).expect("verify");
    assert!(report.is_ok(), "chain broken after crash: {report:?}");
    let stored: BTreeSet<u64> = stored_seqs(&db).into_iter().collect();
    let missing: Vec<_> = committed.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let max = stored.iter().max().copied().unwrap_or(0);
    assert_eq!(stored, (1..=max).collect(), "stored seqs are not dense");

    // The log keeps going from where the crash left it.
    let log = AuditLog::open(db.clone(), mode.config(&tmp.path)).expect("reopen");
    let next = log
        .append_blocking(action_record("after-crash", 0, Decision::Allow))
        .expect("append after crash");
    assert_eq!(next, max + 1);
    log.shutdown().expect("shutdown");
    assert!(verify(&db).expect("verify").is_ok());
}

/// Appends from 8 tasks forever, printing each acknowledged seq. Never returns.
fn run_child(path: &Path, mode: Mode) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = open_db(path);
        let log = AuditLog::open(db, mode.config(path)).expect("open");
        let mut set = tokio::task::JoinSet::new();
        for t in 0..8u64 {
            let log = log.clone();
            set.spawn(async move {
                for i in 0..u64::MAX {
                    let seq = log
                        .append(&action_record(&format!("crash-{t}"), i, Decision::Allow))
                        .await
                        .expect("append");
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "committed {seq}");
                    let _ = out.flush();
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    std::process::exit(0)
}
