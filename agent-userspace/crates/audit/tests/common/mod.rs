//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cordon_audit::{AuditConfig, AuditLog, Decision, EventKind, NewRecord};
use redb::{Database, StorageBackend, backends::InMemoryBackend};
use serde_json::json;

/// The stored layout as `docs/audit.md` gives it, for tests that edit the file as an intruder
/// would: key = the first record's seq, value = frames `len u32 LE | record bytes`.
pub const CHUNKS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("audit_chunks");
/// The layout before chunks: one record per entry.
pub const LEGACY_RECORDS: redb::TableDefinition<u64, &[u8]> =
    redb::TableDefinition::new("audit_records");

/// Every stored record, `(seq, bytes)`, read from the chunks without the crate's reader.
pub fn raw_records(db: &Database) -> Vec<(u64, Vec<u8>)> {
    let txn = redb::ReadableDatabase::begin_read(db).expect("read");
    let table = txn.open_table(CHUNKS).expect("chunks");
    let mut out = vec![];
    for entry in redb::ReadableTable::iter(&table).expect("iter") {
        let (key, value) = entry.expect("chunk");
        let (mut seq, value) = (key.value(), value.value());
        let mut at = 0;
        while at < value.len() {
            let len = u32::from_le_bytes(value[at..at + 4].try_into().expect("len")) as usize;
            out.push((seq, value[at + 4..at + 4 + len].to_vec()));
            at += 4 + len;
            seq += 1;
        }
    }
    out
}

/// Replaces everything stored with `records`, framed one chunk per run of consecutive seqs.
pub fn write_raw(db: &Database, records: &[(u64, Vec<u8>)]) {
    let mut runs: Vec<(u64, Vec<u8>)> = vec![];
    let mut next = None;
    for (seq, bytes) in records {
        if next != Some(*seq) {
            runs.push((*seq, vec![]));
        }
        let value = &mut runs.last_mut().expect("run").1;
        value.extend_from_slice(&u32::try_from(bytes.len()).expect("len").to_le_bytes());
        value.extend_from_slice(bytes);
        next = Some(seq + 1);
    }
    replace_records(db, CHUNKS, &runs);
}

/// Drops every chunk and stores `entries` in `table` instead (`LEGACY_RECORDS`: the layout
/// before chunks, one record per entry).
pub fn replace_records(
    db: &Database,
    table: redb::TableDefinition<u64, &[u8]>,
    entries: &[(u64, Vec<u8>)],
) {
    let txn = db.begin_write().expect("write");
    txn.delete_table(CHUNKS).expect("drop chunks");
    {
        let mut t = txn.open_table(table).expect("table");
        for (key, value) in entries {
            t.insert(*key, value.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn temp_db() -> TempDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cordon.redb");
    TempDb { dir, path }
}

pub fn open_db(path: &Path) -> Arc<Database> {
    Arc::new(Database::create(path).expect("open redb"))
}

pub fn open_log(db: &Arc<Database>, cfg: AuditConfig) -> AuditLog {
    AuditLog::open(Arc::clone(db), cfg).expect("open audit log")
}

/// A realistic HTTP action record; `i` varies the content.
pub fn action_record(agent: &str, i: u64, decision: Decision) -> NewRecord {
    let mut params = serde_json::Map::new();
    params.insert("owner".into(), json!("acme"));
    params.insert("repo".into(), json!("site"));
    params.insert("branch".into(), json!(format!("feature-{i}")));
    NewRecord {
        agent: Some(agent.into()),
        instance: Some("inst-1".into()),
        chain: Some(format!("orchestrator/{agent}")),
        cgroup_id: Some(4242),
        pid: Some(1000 + u32::try_from(i % 1000).unwrap_or(0)),
        uid: Some(1001),
        exe: Some("/usr/bin/python3".into()),
        connector: Some("github".into()),
        action: Some("github.branch.delete".into()),
        params,
        decision: Some(decision),
        rule: Some("protect-main".into()),
        reason: Some("matched rule".into()),
        policy_version: Some("v7".into()),
        upstream_status: Some(204),
        bytes_up: Some(120),
        bytes_down: Some(0),
        decision_latency_us: Some(35),
        total_latency_us: Some(81_000),
        dst_host: Some("api.github.com".into()),
        dst_port: Some(443),
        http_method: Some("DELETE".into()),
        http_path: Some("/repos/acme/site/git/refs/heads/x".into()),
        ..NewRecord::new(EventKind::Request)
    }
}

/// All seqs stored, in key order.
pub fn stored_seqs(db: &Database) -> Vec<u64> {
    cordon_audit::iter_from(db, 0)
        .expect("iter")
        .map(|r| r.expect("record").seq)
        .collect()
}

/// Memory-backed storage whose writes and fsyncs start failing on demand, like a dying disk.
#[derive(Debug)]
pub struct FailingDisk {
    inner: InMemoryBackend,
    fail: Arc<AtomicBool>,
}

impl FailingDisk {
    pub fn new(fail: &Arc<AtomicBool>) -> FailingDisk {
        FailingDisk {
            inner: InMemoryBackend::new(),
            fail: Arc::clone(fail),
        }
    }

    fn check(&self) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected disk failure"));
        }
        Ok(())
    }
}

impl StorageBackend for FailingDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}
