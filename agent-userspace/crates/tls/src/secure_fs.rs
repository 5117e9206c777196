//! File helpers for CA material: files appear atomically with their final
//! mode (a key is never world-readable, not even for an instant) and the key
//! is checked on the same descriptor it is read from, so a swap between the
//! check and the read is impossible.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::TlsError;

/// Creates `dir` (and parents) as 0700 when missing; an existing directory
/// is left as the operator configured it.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), TlsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| TlsError::io("creating directory", dir, e))
}

/// Writes `bytes` to `path` via a temporary file in the same directory that
/// is created with `mode` and renamed into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = temp_path(path);
    let result = write_then_rename(&tmp, path, bytes, mode);
    if result.is_err() {
        // Best effort: the temp file is useless once the write failed.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(|e| TlsError::io("creating", tmp, e))?;
    // The umask may have stripped bits we want (0644 for certificates);
    // fchmod on the open descriptor sets exactly `mode`.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| TlsError::io("setting permissions on", tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| TlsError::io("writing", tmp, e))?;
    file.sync_all()
        .map_err(|e| TlsError::io("syncing", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| TlsError::io("renaming into place", path, e))?;
    if let Some(dir) = path.parent() {
        // Durability of the rename; failure here does not make the file wrong.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Reads a private key file, refusing symlinks, non-regular files and any
/// permission bit for group or others.
pub(crate) fn read_private(path: &Path) -> Result<Vec<u8>, TlsError> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                TlsError::NotRegularFile {
                    path: path.to_owned(),
                }
            } else {
                TlsError::io("opening", path, e)
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| TlsError::io("inspecting", path, e))?;
    if !meta.file_type().is_file() {
        return Err(TlsError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| TlsError::io("reading", path, e))?;
    Ok(bytes)
}

pub(crate) fn read_public(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| TlsError::io("reading", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_exact_mode_despite_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pem");
        write_atomic(&p, b"x", 0o644).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        write_atomic(&p, b"y", 0o600).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"y");
    }

    #[test]
    fn private_read_refuses_group_readable_and_symlinked_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ca.key");
        write_atomic(&key, b"secret", 0o640).unwrap();
        match read_private(&key) {
            Err(TlsError::KeyPermissions { path, mode }) => {
                assert_eq!(path, key);
                assert_eq!(mode, 0o640);
            }
            other => panic!("expected KeyPermissions, got {other:?}"),
        }
        fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&key).unwrap(), b"secret");

        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(matches!(
            read_private(&link),
            Err(TlsError::NotRegularFile { .. })
        ));
    }
}
