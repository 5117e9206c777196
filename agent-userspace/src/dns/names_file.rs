//! The name cache across a daemon stop: written to the state directory when
//! the daemon stops (for an upgrade in place or a restart) and taken, once,
//! by the next start. Without it, an agent connecting to an address it
//! resolved through the old daemon is refused by the new one as a host "not
//! resolved through Cordon" until it resolves again.
//!
//! Expiry travels as wall-clock time, so the time between the two daemons
//! counts. The file lives in the root-only state directory and is removed
//! as it is read; a missing, stale or unreadable file only means names are
//! learnt again (the refusal path stays closed).
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::names::{NameCache, Remembered};

const FILE: &str = "dns-names.json";

#[derive(Serialize, Deserialize)]
struct Entry {
    agent: String,
    ip: IpAddr,
    name: String,
    /// Unix seconds after which the answer is no longer remembered.
    until: u64,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes the cache's live entries (0600, replaced atomically).
pub fn save(cache: &NameCache, state_dir: &Path) -> anyhow::Result<usize> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let now = unix_now();
    let entries: Vec<Entry> = cache
        .snapshot()
        .into_iter()
        .map(|r| Entry {
            agent: r.agent,
            ip: r.ip,
            name: r.name,
            until: now + r.left.as_secs(),
        })
        .collect();
    let target = path(state_dir);
    let tmp = target.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(&entries)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &target)?;
    Ok(entries.len())
}

/// Takes what a previous daemon saved (removing the file); returns how many
/// entries are still live.
pub fn restore(cache: &NameCache, state_dir: &Path) -> anyhow::Result<usize> {
    let file = path(state_dir);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    std::fs::remove_file(&file)?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes)?;
    let now = unix_now();
    let live: Vec<Remembered> = entries
        .into_iter()
        .filter(|e| e.until > now)
        .map(|e| Remembered {
            agent: e.agent,
            ip: e.ip,
            name: e.name,
            left: Duration::from_secs(e.until - now),
        })
        .collect();
    let n = live.len();
    cache.restore(live);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_saved_by_one_daemon_are_answered_by_the_next_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip: IpAddr = "203.0.113.2".parse().expect("ip");
        let old = NameCache::default();
        old.remember("looper", "allowed.test", ip, Duration::from_secs(300));
        assert_eq!(save(&old, dir.path()).expect("save"), 1);
        let new = NameCache::default();
        assert_eq!(restore(&new, dir.path()).expect("restore"), 1);
        assert_eq!(new.lookup("looper", ip).as_deref(), Some("allowed.test"));
        // Taken once: the file is gone.
        assert_eq!(
            restore(&NameCache::default(), dir.path()).expect("again"),
            0
        );
    }

    #[test]
    fn a_broken_file_is_an_error_and_is_not_read_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(path(dir.path()), b"{not json").expect("write");
        assert!(restore(&NameCache::default(), dir.path()).is_err());
        assert_eq!(restore(&NameCache::default(), dir.path()).expect("gone"), 0);
    }
}
