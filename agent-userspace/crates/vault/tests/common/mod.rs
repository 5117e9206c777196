#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use redb::ReadableTable;
use std::sync::Arc;

use cordon_vault::{KeySource, MasterKey, Vault};
use redb::Database;

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("cordon.redb")
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("vault.key")
    }
    pub fn db(&self) -> Arc<Database> {
        Arc::new(Database::create(self.db_path()).unwrap())
    }
    /// Opens (creating on first use) the vault with the fixture's key file.
    pub fn vault(&self) -> (Arc<Database>, Vault) {
        let db = self.db();
        let key = MasterKey::load(&KeySource::KeyFile(self.key_path()), true).unwrap();
        (db.clone(), Vault::open(db, key).unwrap())
    }
}

pub fn sha256_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
        .as_ref()
        .to_vec()
}

/// Rewrites the raw stored record of `name` through `edit`, as an attacker with write access to
/// the database file could.
pub fn tamper(db: &Database, name: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("vault_secrets");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let mut raw = t.get(name).unwrap().unwrap().value().to_vec();
        edit(&mut raw);
        t.insert(name, raw.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

pub fn raw_record(db: &Database, name: &str) -> Vec<u8> {
    use redb::ReadableDatabase;
    let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("vault_secrets");
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(table).unwrap();
    t.get(name).unwrap().unwrap().value().to_vec()
}
