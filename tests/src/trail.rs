//! What the daemon decided, read back from its audit trail (the tamper-evident record of every
//! decision) rather than from log text.
//!
//! The daemon holds its redb database exclusively, so the file is copied and the copy opened.
//! Decisions are committed before the agent sees their effect (strict durability), so once an
//! agent has exited every decision it caused is in the copy.

use std::path::Path;
use std::time::Duration;

use cordon_audit::AuditRecord;
use serde_json::Value;

use crate::error::{Error, IoContext, Result};

/// Name of the database file inside a daemon's state dir.
pub const AUDIT_DB: &str = "cordon.redb";
/// The audit write-ahead log beside it.
pub const AUDIT_WAL: &str = "audit.wal";
const OPEN_ATTEMPTS: u32 = 5;

/// Every committed audit record of the daemon whose state dir is `state_dir`, oldest first.
pub fn read_trail(state_dir: &Path) -> Result<Trail> {
    let src = state_dir.join(AUDIT_DB);
    let mut last = String::new();
    for _ in 0..OPEN_ATTEMPTS {
        match copy_and_read(&src) {
            Ok(records) => return Ok(Trail(records)),
            // A copy taken while a commit was being written may not open; take another.
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Error::Setup(format!(
        "could not read the audit trail {}: {last}",
        src.display()
    )))
}

/// The trail of `chain` once `ready` holds for it, read again until then or until `timeout`
/// passes (then the last one read, for the caller's assertions to name what is missing).
/// For records the daemon writes after the agent's syscall has returned: Landlock's denials
/// reach it through the kernel's audit socket, and the cgroup hooks' through a ring buffer,
/// so on a loaded host they land a moment after the agent has exited.
pub fn read_trail_when(
    state_dir: &Path,
    chain: &str,
    timeout: Duration,
    ready: impl Fn(&Trail) -> bool,
) -> Result<Trail> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let t = read_trail(state_dir)?.of_chain(chain);
        if ready(&t) || std::time::Instant::now() >= deadline {
            return Ok(t);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What is on disk: the database plus the records only its write-ahead log holds yet. The log
/// is copied first: every record acknowledged before that copy is in it or, if a checkpoint
/// came in between, in the database copied after.
fn copy_and_read(src: &Path) -> Result<Vec<AuditRecord>> {
    let dir = tempfile::tempdir().ctx(|| "create audit copy dir".into())?;
    let wal_src = src.with_file_name(AUDIT_WAL);
    let wal = dir.path().join(AUDIT_WAL);
    if wal_src.exists() {
        std::fs::copy(&wal_src, &wal).ctx(|| format!("copy {}", wal_src.display()))?;
    }
    let copy = dir.path().join(AUDIT_DB);
    std::fs::copy(src, &copy).ctx(|| format!("copy {}", src.display()))?;
    let db = redb::Database::open(&copy)
        .map_err(|e| Error::Setup(format!("open copy of {}: {e}", src.display())))?;
    cordon_audit::replay_wal(&db, &wal)
        .map_err(|e| Error::Setup(format!("replay copy of {}: {e}", wal_src.display())))?;
    let iter = cordon_audit::iter_from(&db, 1)
        .map_err(|e| Error::Setup(format!("iterate {}: {e}", src.display())))?;
    iter.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Setup(format!("decode {}: {e}", src.display())))
}

/// The audit records of one daemon.
#[derive(Debug, Clone)]
pub struct Trail(pub Vec<AuditRecord>);

impl Trail {
    pub fn records(&self) -> &[AuditRecord] {
        &self.0
    }

    /// Records whose delegation chain is exactly `chain` (`bot`, `parent/sub`).
    pub fn of_chain(&self, chain: &str) -> Trail {
        Trail(
            self.0
                .iter()
                .filter(|r| r.chain.as_deref() == Some(chain))
                .cloned()
                .collect(),
        )
    }

    /// Records of `action` whose params contain every `(key, value)` of `params`. Outcome
    /// records name their action too but are not decisions: see [`Trail::outcome_of`].
    pub fn matching(&self, action: &str, params: &[(&str, Value)]) -> Vec<&AuditRecord> {
        self.0
            .iter()
            .filter(|r| r.kind != cordon_audit::EventKind::Outcome)
            .filter(|r| r.action.as_deref() == Some(action))
            .filter(|r| params.iter().all(|(k, v)| r.params.get(*k) == Some(v)))
            .collect()
    }

    /// The single record of `action` with these params; panics with the whole trail otherwise.
    pub fn one(&self, action: &str, params: &[(&str, Value)]) -> &AuditRecord {
        let found = self.matching(action, params);
        assert!(
            found.len() == 1,
            "expected exactly one {action} {params:?}, found {}:\n{self}",
            found.len()
        );
        found[0]
    }

    /// Whether any record has `action` with these params.
    pub fn has(&self, action: &str, params: &[(&str, Value)]) -> bool {
        !self.matching(action, params).is_empty()
    }

    /// The outcome records of decision `seq`.
    pub fn outcome_of(&self, seq: u64) -> Vec<&AuditRecord> {
        self.0
            .iter()
            .filter(|r| r.kind == cordon_audit::EventKind::Outcome && r.decision_seq == Some(seq))
            .collect()
    }

    /// The error of the one outcome of decision `seq`, which must say `failed`.
    pub fn failure_of(&self, seq: u64) -> &str {
        let outcome = self.outcome_of(seq);
        assert_eq!(outcome.len(), 1, "outcomes of #{seq}:\n{self}");
        assert_eq!(
            outcome[0].outcome,
            Some(cordon_audit::OutcomeState::Failed),
            "{outcome:?}"
        );
        outcome[0].error.as_deref().unwrap_or("")
    }

    /// Records whose destination IP is `ip`.
    pub fn to_ip(&self, ip: &str) -> Vec<&AuditRecord> {
        self.0
            .iter()
            .filter(|r| r.dst_ip.as_deref() == Some(ip))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `allow` / `deny` / `pending` of a record, `""` if it has none.
pub fn verdict(r: &AuditRecord) -> &'static str {
    r.decision.map_or("", |d| d.as_str())
}

/// The id of the rule that decided, `""` if none.
pub fn rule(r: &AuditRecord) -> &str {
    r.rule.as_deref().unwrap_or("")
}

impl std::fmt::Display for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.0 {
            writeln!(
                f,
                "  #{} {} chain={} action={} params={} decision={} rule={} reason={:?}",
                r.seq,
                r.kind.as_str(),
                r.chain.as_deref().unwrap_or("-"),
                r.action.as_deref().unwrap_or("-"),
                Value::Object(r.params.clone()),
                verdict(r),
                rule(r),
                r.reason.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    }
}
