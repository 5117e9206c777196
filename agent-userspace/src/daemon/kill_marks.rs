//! Kill marks on disk, so a restart never un-kills an agent: one small JSON
//! file, replaced atomically (write a temporary file, fsync, rename, fsync
//! the directory), with the marks also held in memory for the checks made on
//! every request.
//!
//! They used to live in the shared database, where persisting a kill waited
//! for the database's write lock behind the audit writer's commits: under
//! load, `cordon kill` spent most of its time there. A file of its own is
//! written by nobody else.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Mutex, RwLock},
};

use serde::{Deserialize, Serialize};

use crate::{
    install::{error::InstallError, fsops::write_atomic},
    killswitch::Scope,
};

/// One mark: what is cut off, why, by whom, since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mark {
    /// `cordon kill SCOPE`: frozen and cut off.
    Kill(KillMark),
    /// `cordon kill --connector C AGENT`: one connector refused.
    ConnectorCut(ConnectorCut),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillMark {
    pub scope: Scope,
    pub reason: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorCut {
    pub agent: String,
    pub connector: String,
    pub reason: String,
    pub by: String,
    /// Absent in marks written before cuts carried a time.
    #[serde(default)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How the file stores a mark: typed, or (files written before marks were
/// typed) the mark's JSON as a string, read once and rewritten typed.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Typed(Mark),
    Legacy(String),
}

/// A mark an older daemon kept as JSON text (in its database).
pub fn parse_legacy(text: &str) -> Result<Mark, serde_json::Error> {
    Stored::Legacy(text.to_string()).into_mark()
}

impl Stored {
    fn into_mark(self) -> Result<Mark, serde_json::Error> {
        match self {
            Stored::Typed(m) => Ok(m),
            Stored::Legacy(text) => serde_json::from_str::<KillMark>(&text)
                .map(Mark::Kill)
                .or_else(|_| serde_json::from_str::<ConnectorCut>(&text).map(Mark::ConnectorCut)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KillMarksError {
    #[error("reading the kill marks {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the kill marks {} are unreadable at line {line}, column {column}: {message}; \
         the daemon will not start without knowing which agents are killed \
         (fix the file, or remove it to lift every kill)",
        path.display()
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("writing the kill marks {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: Box<InstallError>,
    },
}

pub struct KillMarks {
    path: PathBuf,
    marks: RwLock<BTreeMap<String, Mark>>,
    /// One writer at a time, so the file always holds a whole map.
    write: Mutex<()>,
}

impl KillMarks {
    /// Loads `path`; a missing file is no marks.
    pub fn open(path: &Path) -> Result<KillMarks, KillMarksError> {
        let parse_error = |e: serde_json::Error| KillMarksError::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let marks = match std::fs::read_to_string(path) {
            Ok(text) => {
                let stored: BTreeMap<String, Stored> =
                    serde_json::from_str(&text).map_err(parse_error)?;
                let mut marks = BTreeMap::new();
                for (key, value) in stored {
                    let mark = value.into_mark().map_err(|e| KillMarksError::Parse {
                        path: path.to_path_buf(),
                        line: e.line(),
                        column: e.column(),
                        message: format!("the mark for {key}: {e}"),
                    })?;
                    marks.insert(key, mark);
                }
                marks
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(KillMarksError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(KillMarks {
            path: path.to_path_buf(),
            marks: RwLock::new(marks),
            write: Mutex::new(()),
        })
    }

    /// Records a mark. It is in force in memory before the write, so a
    /// failed write still leaves the agent killed until the daemon stops;
    /// the error says it will not survive a restart.
    pub fn put(&self, key: &str, mark: Mark) -> Result<(), KillMarksError> {
        self.change(|m| {
            m.insert(key.to_string(), mark);
        })
    }

    /// Lifts a mark.
    pub fn del(&self, key: &str) -> Result<(), KillMarksError> {
        self.change(|m| {
            m.remove(key);
        })
    }

    /// Every mark, by key.
    pub fn list(&self) -> Vec<(String, Mark)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Mark>> {
        self.marks.read().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut BTreeMap<String, Mark>)) -> Result<(), KillMarksError> {
        let _one_writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = {
            let mut marks = self.marks.write().unwrap_or_else(|e| e.into_inner());
            f(&mut marks);
            marks.clone()
        };
        self.persist(&snapshot)
            .map_err(|source| KillMarksError::Write {
                path: self.path.clone(),
                source: Box::new(source),
            })
    }

    /// The install's atomic replace (temporary file, exact mode, fsync,
    /// rename), then an fsync of the directory so the rename itself survives
    /// a power loss before `cordon kill` returns.
    fn persist(&self, marks: &BTreeMap<String, Mark>) -> Result<(), InstallError> {
        let text = serde_json::to_vec_pretty(marks)
            .map_err(|e| InstallError::io("encoding", &self.path)(std::io::Error::other(e)))?;
        write_atomic(&self.path, &text, 0o600)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(InstallError::io("syncing the directory", dir))
    }
}

#[cfg(test)]
mod tests;
