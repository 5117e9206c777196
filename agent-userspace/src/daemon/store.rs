//! The daemon's own durable state beside the audit log and the vault in the
//! shared database: pending approvals (so a restart reports them expired,
//! never loses them) and standing grants (so their uses survive it). Kill marks lived here too; they now have a file of
//! their own (`kill_marks.rs`), and the start moves any left here into it.
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const KILLS: TableDefinition<&str, &str> = TableDefinition::new("cordon_kills");
const APPROVALS: TableDefinition<&str, &str> = TableDefinition::new("cordon_approvals");
const GRANTS: TableDefinition<&str, &str> = TableDefinition::new("cordon_grants");

#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

#[derive(Debug, thiserror::Error)]
#[error("daemon state ({table}): {message}")]
pub struct StoreError {
    table: &'static str,
    message: String,
}

fn err(table: &'static str) -> impl Fn(String) -> StoreError {
    move |message| StoreError { table, message }
}

impl Store {
    pub fn new(db: Arc<Database>) -> Store {
        Store { db }
    }

    #[cfg(test)]
    pub fn put_legacy_kill(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.put(KILLS, "kills", key, value)
    }
    pub fn del_legacy_kill(&self, key: &str) -> Result<(), StoreError> {
        self.del(KILLS, "kills", key)
    }
    pub fn legacy_kills(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.list(KILLS, "kills")
    }
    pub fn put_approval(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.put(APPROVALS, "approvals", key, value)
    }
    pub fn del_approval(&self, key: &str) -> Result<(), StoreError> {
        self.del(APPROVALS, "approvals", key)
    }
    pub fn approvals(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.list(APPROVALS, "approvals")
    }

    pub fn put_grant(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.put(GRANTS, "grants", key, value)
    }
    pub fn del_grant(&self, key: &str) -> Result<(), StoreError> {
        self.del(GRANTS, "grants", key)
    }
    pub fn grants(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.list(GRANTS, "grants")
    }

    fn put(
        &self,
        t: TableDefinition<&str, &str>,
        name: &'static str,
        k: &str,
        v: &str,
    ) -> Result<(), StoreError> {
        let e = err(name);
        let tx = self.db.begin_write().map_err(|x| e(x.to_string()))?;
        {
            let mut table = tx.open_table(t).map_err(|x| e(x.to_string()))?;
            table.insert(k, v).map_err(|x| e(x.to_string()))?;
        }
        tx.commit().map_err(|x| e(x.to_string()))
    }

    fn del(
        &self,
        t: TableDefinition<&str, &str>,
        name: &'static str,
        k: &str,
    ) -> Result<(), StoreError> {
        let e = err(name);
        let tx = self.db.begin_write().map_err(|x| e(x.to_string()))?;
        {
            let mut table = tx.open_table(t).map_err(|x| e(x.to_string()))?;
            table.remove(k).map_err(|x| e(x.to_string()))?;
        }
        tx.commit().map_err(|x| e(x.to_string()))
    }

    fn list(
        &self,
        t: TableDefinition<&str, &str>,
        name: &'static str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let e = err(name);
        let tx = self.db.begin_read().map_err(|x| e(x.to_string()))?;
        let table = match tx.open_table(t) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(x) => return Err(e(x.to_string())),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|x| e(x.to_string()))? {
            let (k, v) = row.map_err(|x| e(x.to_string()))?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }
}
