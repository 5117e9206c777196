//! Reading and writing key files: owner-only, no symlinks, fsynced, and the `<file>.next`
//! protocol that makes key rotation crash-safe.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::master_key::KEY_LEN;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VaultError {
    let path = path.to_path_buf();
    move |source| VaultError::KeyFileIo {
        action,
        path,
        source,
    }
}

/// `<path>.next`: where a rotation stages the new key before the database switches to it.
pub fn next_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// Reads a key file, or `None` if it does not exist. Refuses symlinks, non-regular files, files
/// owned by another uid and files any group/other permission bit is set on. Accepts 32 raw
/// bytes or 64 hex digits (surrounding whitespace allowed, for hand-made systemd credentials).
pub fn read(path: &Path) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>> {
    // O_NOFOLLOW + fstat checks the file we actually read, not whatever the path points at
    // a moment later.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("opening key file", path)(e)),
    };
    let meta = file
        .metadata()
        .map_err(io_err("inspecting key file", path))?;
    if !meta.file_type().is_file() {
        return Err(VaultError::KeyFileNotRegular {
            path: path.to_path_buf(),
        });
    }
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(VaultError::KeyFileWrongOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(VaultError::KeyFileTooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > 256 {
        return Err(VaultError::KeyFileMalformed {
            path: path.to_path_buf(),
            reason: "file is larger than any key encoding",
        });
    }
    let mut raw = Zeroizing::new(Vec::with_capacity(257));
    file.read_to_end(&mut raw)
        .map_err(io_err("reading key file", path))?;
    parse(&raw)
        .map(Some)
        .map_err(|reason| VaultError::KeyFileMalformed {
            path: path.to_path_buf(),
            reason,
        })
}

fn parse(raw: &[u8]) -> std::result::Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if raw.len() == KEY_LEN {
        key.copy_from_slice(raw);
        return Ok(key);
    }
    let trimmed = raw.trim_ascii();
    if trimmed.len() == KEY_LEN * 2 {
        hex::decode_to_slice(trimmed, key.as_mut())
            .map_err(|_| "64 characters but not hex digits")?;
        return Ok(key);
    }
    Err("expected 32 raw bytes or 64 hex digits")
}

/// Creates `path` with mode 0600 (failing if it exists), writes the raw key and makes both the
/// file and its directory entry durable before returning.
pub fn create(path: &Path, key: &[u8; KEY_LEN]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err("creating key file", path))?;
    file.write_all(key)
        .map_err(io_err("writing key file", path))?;
    file.sync_all().map_err(io_err("syncing key file", path))?;
    sync_parent(path)
}

/// Stages `key` at `<path>.next`, replacing any stale staged key from an earlier failed attempt.
pub fn write_next(path: &Path, key: &[u8; KEY_LEN]) -> Result<()> {
    let next = next_path(path);
    remove_if_present(&next)?;
    create(&next, key)
}

/// Atomically replaces the key file with the staged `.next` key.
pub fn promote_next(path: &Path) -> Result<()> {
    let next = next_path(path);
    std::fs::rename(&next, path).map_err(io_err("renaming staged key over", path))?;
    sync_parent(path)
}

pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path)(e)),
    }
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory of", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_file_is_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.key");
        create(&p, &[7; KEY_LEN]).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(*read(&p).unwrap().unwrap(), [7; KEY_LEN]);
        assert!(create(&p, &[8; KEY_LEN]).is_err(), "must not overwrite");
    }

    #[test]
    fn group_readable_file_is_refused_naming_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.key");
        create(&p, &[7; KEY_LEN]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read(&p).unwrap_err().to_string();
        assert!(err.contains("vault.key") && err.contains("0640"), "{err}");
    }

    #[test]
    fn symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        create(&real, &[7; KEY_LEN]).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(read(&link).is_err());
    }

    #[test]
    fn hex_encoding_is_accepted_and_garbage_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hex.key");
        let text = format!("{}\n", hex::encode([0x5a; KEY_LEN]));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(*read(&p).unwrap().unwrap(), [0x5a; KEY_LEN]);
        let short = dir.path().join("short.key");
        std::fs::write(&short, b"tooshort").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read(&short),
            Err(VaultError::KeyFileMalformed { .. })
        ));
    }

    #[test]
    fn missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("absent")).unwrap().is_none());
    }

    #[test]
    fn promote_next_replaces_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.key");
        create(&p, &[1; KEY_LEN]).unwrap();
        write_next(&p, &[2; KEY_LEN]).unwrap();
        promote_next(&p).unwrap();
        assert_eq!(*read(&p).unwrap().unwrap(), [2; KEY_LEN]);
        assert!(!next_path(&p).exists());
    }
}
