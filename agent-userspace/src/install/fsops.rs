//! File operations of install and uninstall. Each one is idempotent and
//! says what it changed, so a rerun reports "unchanged" / "absent".
use std::{
    collections::BTreeSet,
    fs::{self, DirBuilder, OpenOptions, Permissions},
    io::{ErrorKind, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::error::InstallError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// Creates `dir` and missing ancestors (0755); an existing directory keeps
/// its mode (it is the system's: /usr/local/bin, /etc/systemd/system).
/// Every directory it had to create is added to `created`, so a purge can
/// remove exactly those again. `Ok(true)` when `dir` itself was created.
pub fn ensure_dir(dir: &Path, created: &mut BTreeSet<PathBuf>) -> Result<bool, InstallError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| fs::symlink_metadata(a).is_err())
        .collect();
    for d in missing.iter().rev() {
        match DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => {
                created.insert(d.to_path_buf());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(InstallError::io("creating directory", *d)(e)),
        }
    }
    let meta = fs::metadata(dir).map_err(InstallError::io("inspecting", dir))?;
    if !meta.is_dir() {
        return Err(InstallError::NotRegular { path: dir.into() });
    }
    Ok(!missing.is_empty())
}

/// [`ensure_dir`] for a directory Cordon owns: its mode is enforced even
/// when it existed (a state dir loosened by hand is tightened again).
pub fn ensure_own_dir(
    dir: &Path,
    mode: u32,
    created: &mut BTreeSet<PathBuf>,
) -> Result<bool, InstallError> {
    let new = ensure_dir(dir, created)?;
    let meta = fs::symlink_metadata(dir).map_err(InstallError::io("inspecting", dir))?;
    if !meta.is_dir() {
        // A symlink here could point the 0700 state dir anywhere.
        return Err(InstallError::NotRegular { path: dir.into() });
    }
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(dir, Permissions::from_mode(mode))
            .map_err(InstallError::io("setting the mode of", dir))?;
    }
    Ok(new)
}

/// Writes via a temporary file in the same directory, created with `mode`
/// and renamed into place: readers see the old file or the new one, and a
/// running binary being replaced keeps its old inode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.cordon-install.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(InstallError::io("creating", &tmp))?;
        // The umask may have cleared bits of `mode`.
        f.set_permissions(Permissions::from_mode(mode))
            .map_err(InstallError::io("setting the mode of", &tmp))?;
        f.write_all(bytes)
            .map_err(InstallError::io("writing", &tmp))?;
        f.sync_all().map_err(InstallError::io("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(InstallError::io("renaming into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Never overwrites: an operator's file stays as it is.
pub fn write_if_absent(path: &Path, bytes: &[u8], mode: u32) -> Result<Change, InstallError> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(Change::Unchanged);
    }
    write_atomic(path, bytes, mode)?;
    Ok(Change::Created)
}

/// Files install owns (unit, binary): rewritten when their content or
/// mode differs.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<Change, InstallError> {
    let existed = match fs::read(path) {
        Ok(old) => {
            let same_mode = fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777 == mode)
                .unwrap_or(false);
            if old == bytes && same_mode {
                return Ok(Change::Unchanged);
            }
            true
        }
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(InstallError::io("reading", path)(e)),
    };
    write_atomic(path, bytes, mode)?;
    Ok(if existed {
        Change::Updated
    } else {
        Change::Created
    })
}

/// Copies the tree `src` to `dst` (which must not exist): directories 0755,
/// files 0644. Built beside `dst` and renamed, so a failed copy leaves no
/// half policy directory the daemon would load.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<usize, InstallError> {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!(".{name}.cordon-install.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let result = copy_into(src, &tmp).and_then(|n| {
        fs::rename(&tmp, dst).map_err(InstallError::io("renaming into place", dst))?;
        Ok(n)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn copy_into(src: &Path, dst: &Path) -> Result<usize, InstallError> {
    DirBuilder::new()
        .mode(0o755)
        .create(dst)
        .map_err(InstallError::io("creating directory", dst))?;
    fs::set_permissions(dst, Permissions::from_mode(0o755))
        .map_err(InstallError::io("setting the mode of", dst))?;
    let mut entries: Vec<_> = fs::read_dir(src)
        .map_err(InstallError::io("listing", src))?
        .collect::<Result<_, _>>()
        .map_err(InstallError::io("listing", src))?;
    entries.sort_by_key(|e| e.file_name());
    let mut files = 0;
    for e in entries {
        let from = e.path();
        let to = dst.join(e.file_name());
        let kind = e
            .file_type()
            .map_err(InstallError::io("inspecting", &from))?;
        if kind.is_dir() {
            files += copy_into(&from, &to)?;
        } else if kind.is_file() {
            let bytes = fs::read(&from).map_err(InstallError::io("reading", &from))?;
            write_atomic(&to, &bytes, 0o644)?;
            files += 1;
        } else {
            return Err(InstallError::NotRegular { path: from });
        }
    }
    Ok(files)
}

/// `Ok(false)` when it was already gone.
pub fn remove_file(path: &Path) -> Result<bool, InstallError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(InstallError::io("removing", path)(e)),
    }
}

pub fn remove_tree(path: &Path) -> Result<bool, InstallError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(InstallError::io("inspecting", path)(e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)
            .map(|()| true)
            .map_err(InstallError::io("removing", path)),
        Ok(_) => remove_file(path),
    }
}

/// Removes `dir` only when empty; anything an operator put there stays.
pub fn remove_dir_if_empty(dir: &Path) -> Result<bool, InstallError> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {
            Ok(false)
        }
        Err(e) => Err(InstallError::io("removing", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_dir_records_only_the_directories_it_created() {
        let t = tempfile::tempdir().unwrap();
        let mut created = BTreeSet::new();
        ensure_own_dir(&t.path().join("a/b/c"), 0o700, &mut created).unwrap();
        let want: BTreeSet<PathBuf> = ["a", "a/b", "a/b/c"]
            .iter()
            .map(|p| t.path().join(p))
            .collect();
        assert_eq!(created, want);
        let mode = fs::metadata(t.path().join("a/b/c"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        let mut again = BTreeSet::new();
        assert!(!ensure_dir(&t.path().join("a/b/c"), &mut again).unwrap());
        assert!(again.is_empty());
    }

    #[test]
    fn ensure_dir_leaves_an_existing_system_directory_mode_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("bin");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, Permissions::from_mode(0o711)).unwrap();
        ensure_dir(&d, &mut BTreeSet::new()).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o711
        );
        ensure_own_dir(&d, 0o700, &mut BTreeSet::new()).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn write_if_absent_keeps_an_operators_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("cordon.toml");
        fs::write(&p, "mine").unwrap();
        assert_eq!(
            write_if_absent(&p, b"theirs", 0o644).unwrap(),
            Change::Unchanged
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "mine");
    }

    #[test]
    fn write_if_changed_reports_created_unchanged_updated() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("unit");
        assert_eq!(write_if_changed(&p, b"a", 0o644).unwrap(), Change::Created);
        assert_eq!(
            write_if_changed(&p, b"a", 0o644).unwrap(),
            Change::Unchanged
        );
        assert_eq!(write_if_changed(&p, b"b", 0o644).unwrap(), Change::Updated);
        assert_eq!(write_if_changed(&p, b"b", 0o755).unwrap(), Change::Updated);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn copy_tree_refuses_symlinks_and_leaves_nothing_half_copied() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("connectors")).unwrap();
        fs::write(src.join("a.toml"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("connectors/evil.toml")).unwrap();
        let dst = t.path().join("dst");
        assert!(matches!(
            copy_tree(&src, &dst),
            Err(InstallError::NotRegular { .. })
        ));
        assert!(!dst.exists());
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "temp copy left behind"
        );
    }

    #[test]
    fn copy_tree_copies_nested_files_world_readable() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("connectors")).unwrap();
        fs::write(src.join("connectors/gh.toml"), "g").unwrap();
        fs::write(src.join("p.toml"), "p").unwrap();
        let dst = t.path().join("dst");
        assert_eq!(copy_tree(&src, &dst).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(dst.join("connectors/gh.toml")).unwrap(),
            "g"
        );
        let mode = fs::metadata(dst.join("p.toml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn removing_twice_reports_absent_the_second_time() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("f"), "").unwrap();
        assert!(remove_tree(&p).unwrap());
        assert!(!remove_tree(&p).unwrap());
        assert!(!remove_file(&p).unwrap());
        assert!(!remove_dir_if_empty(&p).unwrap());
    }
}
