//! What an install created beyond its own files: directories that did not
//! exist before and the group. `uninstall --purge` undoes exactly these,
//! so a purge never removes a directory or group the system already had.
//!
//! One entry per line, paths as seen on the installed system:
//! `dir /usr/local/bin`, `group cordon`.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{error::InstallError, fsops, layout::Layout};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub dirs: BTreeSet<PathBuf>,
    pub groups: BTreeSet<String>,
}

impl Manifest {
    /// An absent manifest is empty: nothing is known to be ours.
    pub fn load(path: &Path) -> Result<Manifest, InstallError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => return Err(InstallError::io("reading", path)(e)),
        };
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: &str| InstallError::Manifest {
                path: path.into(),
                line: i + 1,
                message: message.into(),
            };
            match line.split_once(' ') {
                Some(("dir", p)) if p.starts_with('/') && !p.contains("..") => {
                    m.dirs.insert(PathBuf::from(p));
                }
                Some(("dir", _)) => return Err(bad("dir needs an absolute path without `..`")),
                Some(("group", g)) if !g.is_empty() && !g.contains(char::is_whitespace) => {
                    m.groups.insert(g.to_string());
                }
                _ => return Err(bad("expected `dir /path` or `group NAME`")),
            }
        }
        Ok(m)
    }

    pub fn save(&self, path: &Path) -> Result<(), InstallError> {
        let mut text = String::from(
            "# Written by `cordon install`: what `cordon uninstall --purge` removes.\n",
        );
        for d in &self.dirs {
            text.push_str(&format!("dir {}\n", d.display()));
        }
        for g in &self.groups {
            text.push_str(&format!("group {g}\n"));
        }
        fsops::write_atomic(path, text.as_bytes(), 0o600)
    }

    /// Records directories created under `layout`'s root, as target paths.
    pub fn add_dirs(&mut self, layout: &Layout, created: &BTreeSet<PathBuf>) {
        self.dirs
            .extend(created.iter().map(|d| layout.target_of(d)));
    }

    pub fn merge(&mut self, other: Manifest) {
        self.dirs.extend(other.dirs);
        self.groups.extend(other.groups);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("install.manifest");
        let mut m = Manifest::default();
        m.dirs.insert("/usr/local/bin".into());
        m.groups.insert("cordon".into());
        m.save(&p).unwrap();
        assert_eq!(Manifest::load(&p).unwrap(), m);
    }

    #[test]
    fn absent_manifest_claims_nothing() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            Manifest::load(&t.path().join("none")).unwrap(),
            Manifest::default()
        );
    }

    #[test]
    fn relative_or_dotted_dirs_are_refused_with_the_line() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m");
        std::fs::write(&p, "# c\ndir /ok\ndir /a/../etc\n").unwrap();
        let err = Manifest::load(&p).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
