//! How each instance is contained, kept on disk (`STATE_DIR/instances/
//! <cgroup id>.json`) so a restarted daemon still knows: `cordon ps` shows
//! it, refusals name the right rule, and a finished instance's kernel
//! profile and temp dir are removed even if it ended while the daemon was
//! down.
use std::path::{Path, PathBuf};

use super::contained::Containment;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: Box<crate::install::error::InstallError>,
    },
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("instances")
}

fn file(state_dir: &Path, cgroup_id: u64) -> PathBuf {
    dir(state_dir).join(format!("{cgroup_id}.json"))
}

pub fn save(state_dir: &Path, cgroup_id: u64, c: &Containment) -> Result<(), StoreError> {
    let d = dir(state_dir);
    std::fs::create_dir_all(&d).map_err(|source| StoreError::Io {
        path: d.clone(),
        source,
    })?;
    let path = file(state_dir, cgroup_id);
    // Serialising plain data into memory cannot fail.
    let text = serde_json::to_vec(c).unwrap_or_default();
    crate::install::fsops::write_atomic(&path, &text, 0o600).map_err(|source| StoreError::Write {
        path,
        source: Box::new(source),
    })
}

pub fn remove(state_dir: &Path, cgroup_id: u64) {
    let path = file(state_dir, cgroup_id);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

/// Every saved instance. A file that does not parse is reported and
/// skipped: its instance keeps its kernel profile until removed by hand.
pub fn load_all(state_dir: &Path) -> Vec<(u64, Containment)> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Some(id) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        match std::fs::read(&path).map(|b| serde_json::from_slice::<Containment>(&b)) {
            Ok(Ok(c)) => out.push((id, c)),
            Ok(Err(e)) => tracing::error!("{}: unreadable containment record: {e}", path.display()),
            Err(e) => tracing::error!("{}: {e}", path.display()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::contained::RootMode;

    #[test]
    fn a_saved_instance_loads_back_and_removes() {
        let d = tempfile::tempdir().unwrap();
        let c = Containment::off(
            65534,
            Some(RootMode::UserNamespace(65534)),
            Some("a.toml".into()),
        );
        save(d.path(), 42, &c).unwrap();
        let all = load_all(d.path());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, 42);
        assert_eq!(all[0].1.off_by(), Some("a.toml"));
        assert_eq!(all[0].1.root(), Some(RootMode::UserNamespace(65534)));
        remove(d.path(), 42);
        assert!(load_all(d.path()).is_empty());
    }
}
