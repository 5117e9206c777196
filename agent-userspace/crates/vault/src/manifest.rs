//! The sealed manifest: the current version of every secret name, including removed ones.
//!
//! Each record binds its own version, but an attacker with write access to the database file
//! could still put back an older, validly sealed record. The manifest is sealed under the
//! master key and updated in the same transaction as every record change, so a record whose
//! version differs from the manifest's is reported instead of served. (Rolling back the whole
//! database file to an older snapshot is outside what a local file can detect.)

use std::collections::BTreeMap;

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};
use crate::master_key::MasterKey;
use crate::seal;
use crate::tables;

const AAD: &[u8] = b"cordon-vault/manifest/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u64,
    /// Kept after removal so a re-created name continues its version sequence and an old
    /// record cannot reappear.
    pub removed: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: BTreeMap<String, Entry>,
}

impl Manifest {
    pub fn load(
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &MasterKey,
    ) -> Result<Manifest> {
        let Some(blob) = meta.get(tables::META_MANIFEST)? else {
            return Err(VaultError::MetadataMalformed {
                what: "manifest",
                reason: "missing".into(),
            });
        };
        let plain = seal::open_blob(key, AAD, blob.value())
            .map_err(|_| VaultError::MetadataAuthentication { what: "manifest" })?;
        serde_json::from_slice(&plain).map_err(|e| VaultError::MetadataMalformed {
            what: "manifest",
            reason: e.to_string(),
        })
    }

    pub fn store(
        &self,
        meta: &mut Table<&'static str, &'static [u8]>,
        key: &MasterKey,
    ) -> Result<()> {
        // Serialising strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let sealed = seal::seal(key, AAD, &json)?;
        meta.insert(tables::META_MANIFEST, seal::to_blob(&sealed).as_slice())?;
        Ok(())
    }

    /// The version the live record of `name` must have, if the name is live.
    pub fn live_version(&self, name: &str) -> Option<u64> {
        self.entries
            .get(name)
            .filter(|e| !e.removed)
            .map(|e| e.version)
    }

    /// The version a new record of `name` gets: one past anything ever stored under it.
    pub fn next_version(&self, name: &str) -> u64 {
        self.entries.get(name).map_or(1, |e| e.version + 1)
    }
}
