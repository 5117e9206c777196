//! Strict modes, as sshd has them: the daemon reads policy, connector and
//! config files only when nobody but root could have written them. Every
//! file, the directories they sit in, and every directory on the way up to
//! `/` must be owned by root and not writable by group or others. A
//! root-owned directory with the sticky bit (`/tmp`) passes: there only an
//! entry's owner may replace it.
//!
//! Without this, an agent (or anyone) who can write one file in the policy
//! directory decides what every agent may do.
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StrictError {
    #[error("{}: owned by uid {uid}, not root; Cordon reads policy and config only from root-owned files (chown root)", path.display())]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("{}: writable by {who} (mode {mode:o}); Cordon reads policy and config only from files nobody else can change (chmod go-w)", path.display())]
    Writable {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

/// What strict modes look at in one path's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub mode: u32,
    pub is_dir: bool,
}

/// The rule for one path. Pure.
pub fn check_one(path: &Path, o: Owner) -> Result<(), StrictError> {
    if o.uid != 0 {
        return Err(StrictError::NotRootOwned {
            path: path.to_path_buf(),
            uid: o.uid,
        });
    }
    let sticky = o.is_dir && o.mode & 0o1000 != 0;
    let who = match (o.mode & 0o020 != 0, o.mode & 0o002 != 0) {
        _ if sticky => return Ok(()),
        (true, true) => "group and others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    Err(StrictError::Writable {
        path: path.to_path_buf(),
        who,
        mode: o.mode & 0o7777,
    })
}

fn owner(path: &Path) -> Result<Owner, StrictError> {
    let md = std::fs::symlink_metadata(path).map_err(|e| StrictError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Owner {
        uid: md.uid(),
        mode: md.mode(),
        is_dir: md.is_dir(),
    })
}

/// `root` (a file or a directory, checked with everything below it) and
/// every directory above it.
pub fn check_tree(root: &Path) -> Result<(), StrictError> {
    let abs = std::path::absolute(root).map_err(|e| StrictError::Io {
        path: root.to_path_buf(),
        message: e.to_string(),
    })?;
    for ancestor in abs.ancestors().skip(1) {
        check_one(ancestor, owner(ancestor)?)?;
    }
    walk(&abs)
}

fn walk(path: &Path) -> Result<(), StrictError> {
    let o = owner(path)?;
    check_one(path, o)?;
    if !o.is_dir {
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| StrictError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| StrictError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        walk(&entry.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(uid: u32, mode: u32, is_dir: bool) -> Owner {
        Owner { uid, mode, is_dir }
    }

    #[test]
    fn root_owned_and_not_writable_by_others_passes() {
        assert!(check_one(Path::new("/p/a.toml"), o(0, 0o100644, false)).is_ok());
        assert!(check_one(Path::new("/p"), o(0, 0o040755, true)).is_ok());
    }

    #[test]
    fn a_file_owned_by_a_user_is_named() {
        let e = check_one(Path::new("/p/a.toml"), o(1000, 0o100644, false)).unwrap_err();
        assert!(
            e.to_string().starts_with("/p/a.toml: owned by uid 1000"),
            "{e}"
        );
    }

    #[test]
    fn group_or_world_writable_fails_but_a_sticky_root_dir_passes() {
        let e = check_one(Path::new("/p/a.toml"), o(0, 0o100666, false)).unwrap_err();
        assert!(
            matches!(
                e,
                StrictError::Writable {
                    who: "group and others",
                    ..
                }
            ),
            "{e}"
        );
        let e = check_one(Path::new("/p"), o(0, 0o040775, true)).unwrap_err();
        assert!(
            matches!(
                e,
                StrictError::Writable {
                    who: "its group",
                    ..
                }
            ),
            "{e}"
        );
        assert!(check_one(Path::new("/tmp"), o(0, 0o041777, true)).is_ok());
        // Sticky does not excuse a world-writable file.
        assert!(check_one(Path::new("/p/a"), o(0, 0o101666, false)).is_err());
    }
}
