//! The console's login token. `cordon console token` makes a fresh one,
//! prints it once and keeps only its SHA-256 in the state directory: a
//! stolen state backup does not log anyone in, and a new token replaces
//! the old at once (sessions opened with the old one stop working).
use std::{
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The file under the state directory holding the hex SHA-256 of the token.
pub const HASH_FILE: &str = "console-token.sha256";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no console token yet: run `cordon console token` ({0})")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a SHA-256 in hex (run `cordon console token` again)")]
    Corrupt(PathBuf),
}

pub fn hash_path(state_dir: &Path) -> PathBuf {
    state_dir.join(HASH_FILE)
}

/// 32 random bytes, hex: long enough that guessing is hopeless, plain
/// enough to paste.
pub fn generate() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Stores the token's hash (never the token), root-only, replacing any
/// previous one in one rename so a reader never sees half a file.
pub fn store(state_dir: &Path, token: &str) -> Result<(), TokenError> {
    let path = hash_path(state_dir);
    let tmp = state_dir.join(format!("{HASH_FILE}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TokenError::Io { path: p, source }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(hex::encode(digest(token)).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// The stored hash, read fresh on every check so a rotated token takes
/// effect without restarting the daemon.
pub fn load(state_dir: &Path) -> Result<[u8; 32], TokenError> {
    let path = hash_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TokenError::Missing(path));
        }
        Err(source) => return Err(TokenError::Io { path, source }),
    };
    parse_hash(&text).ok_or(TokenError::Corrupt(path))
}

pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// Whether `presented` is the token whose hash is `stored`, in time that
/// does not depend on where the two differ.
pub fn matches(stored: &[u8; 32], presented: &str) -> bool {
    digest(presented).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_stored_and_the_token_matches_it() {
        let dir = tempfile::tempdir().unwrap();
        let token = generate();
        store(dir.path(), &token).unwrap();
        let on_disk = std::fs::read_to_string(hash_path(dir.path())).unwrap();
        assert!(!on_disk.contains(&token), "the token itself was stored");
        let mode = std::fs::metadata(hash_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let stored = load(dir.path()).unwrap();
        assert!(matches(&stored, &token));
        assert!(
            matches(&stored, &format!("{token}\n")),
            "pasted with a newline"
        );
        assert!(!matches(&stored, &generate()));
        assert!(!matches(&stored, ""));
    }

    #[test]
    fn a_new_token_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (generate(), generate());
        store(dir.path(), &old).unwrap();
        store(dir.path(), &new).unwrap();
        let stored = load(dir.path()).unwrap();
        assert!(matches(&stored, &new));
        assert!(!matches(&stored, &old));
    }

    #[test]
    fn no_token_file_or_a_corrupt_one_is_an_error_not_an_open_door() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Err(TokenError::Missing(_))));
        std::fs::write(hash_path(dir.path()), "not hex").unwrap();
        assert!(matches!(load(dir.path()), Err(TokenError::Corrupt(_))));
    }
}
