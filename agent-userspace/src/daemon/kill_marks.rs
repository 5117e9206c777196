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

use crate::install::{error::InstallError, fsops::write_atomic};

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
    marks: RwLock<BTreeMap<String, String>>,
    /// One writer at a time, so the file always holds a whole map.
    write: Mutex<()>,
}

impl KillMarks {
    /// Loads `path`; a missing file is no marks.
    pub fn open(path: &Path) -> Result<KillMarks, KillMarksError> {
        let marks = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| KillMarksError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?,
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
    pub fn put(&self, key: &str, value: &str) -> Result<(), KillMarksError> {
        self.change(|m| {
            m.insert(key.to_string(), value.to_string());
        })
    }

    /// Lifts a mark.
    pub fn del(&self, key: &str) -> Result<(), KillMarksError> {
        self.change(|m| {
            m.remove(key);
        })
    }

    /// Every mark, by key.
    pub fn list(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, String>> {
        self.marks.read().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<(), KillMarksError> {
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
    fn persist(&self, marks: &BTreeMap<String, String>) -> Result<(), InstallError> {
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
mod tests {
    use super::*;

    #[test]
    fn marks_survive_reopening_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kills.json");
        let marks = KillMarks::open(&path).unwrap();
        assert!(marks.list().is_empty());
        marks.put("bot", r#"{"reason":"r"}"#).unwrap();
        marks.put("other", "{}").unwrap();
        marks.del("other").unwrap();
        let again = KillMarks::open(&path).unwrap();
        assert_eq!(
            again.list(),
            vec![("bot".into(), r#"{"reason":"r"}"#.into())]
        );
        assert!(again.contains("bot") && !again.contains("other"));
        // No temporary file is left beside it.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kills.json"]);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kills.json");
        std::fs::write(&path, "{\n  \"bot\": \n").unwrap();
        let e = KillMarks::open(&path).err().unwrap().to_string();
        assert!(e.contains("kills.json") && e.contains("line 3"), "{e}");
        // And it is left as it was, for the operator to look at.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\n  \"bot\": \n");
    }

    #[test]
    fn a_failed_write_keeps_the_mark_in_force_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join("kills.json");
        let marks = KillMarks::open(&path).unwrap();
        let e = marks.put("bot", "{}").unwrap_err().to_string();
        assert!(e.contains("writing the kill marks"), "{e}");
        assert!(marks.contains("bot"));
    }
}
