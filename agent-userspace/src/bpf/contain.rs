//! The daemon's handle on host containment in the kernel: per-instance
//! profiles (file deny/allow rules, the pathname unix-socket allow list)
//! and the stream of refusals the observers report.
//!
//! Profiles are keyed by the instance's cgroup id. A replace inserts the
//! new entries before it removes stale ones and marks the cgroup profiled
//! last, so a fresh instance is never profiled with half its rules.
//! Entries are found by scanning the maps (not remembered in memory), so a
//! restarted daemon replaces and removes what an earlier one installed.
use std::{path::PathBuf, sync::Mutex};

use agent_common::{FILE_KEY_DATA, FileVerdict, PROFILE_ACTIVE, UnixKey};
use aya::{
    Ebpf,
    maps::{HashMap, LpmTrie, MapData, MapError, PerCpuArray, RingBuf},
};
use tokio::io::unix::AsyncFd;

use super::{
    BpfError,
    contain_decode::{self, FileKey},
    maps::take,
};

const PROFILES: &str = "CORDON_PROFILES";
const FILE_RULES: &str = "CORDON_FILE_RULES";
const UNIX_ALLOW: &str = "CORDON_UNIX_ALLOW";
const LOST: &str = "CORDON_LOST";
const EVENTS: &str = "CORDON_EVENTS";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelProfile {
    pub files: Vec<FileRule>,
    pub unix_allow: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRule {
    /// Absolute and normalised: matched byte for byte against d_path.
    pub path: PathBuf,
    /// The path and everything below it, not only the path itself.
    pub subtree: bool,
    /// Deny, or (false) allow: an allow under a deny re-opens a subtree.
    pub deny: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}: not an absolute path")]
    NotAbsolute(PathBuf),
    #[error("{0}: contains a NUL byte")]
    Nul(PathBuf),
    #[error("{path}: longer than the {max} bytes a kernel rule can hold")]
    TooLong { path: PathBuf, max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainEvent {
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    /// Positive errno the refused call got (EPERM, EACCES, ...).
    pub errno: i32,
    pub kind: ContainEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainEventKind {
    /// `path` ends with `…` when it was too long to carry whole.
    FileOpen {
        path: String,
        flags: u32,
    },
    UnixConnect {
        addr: UnixAddr,
    },
    Ptrace {
        target_pid: u32,
        mode: u32,
    },
    Signal {
        target_pid: u32,
        signal: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddr {
    Pathname(String),
    /// The name after the leading NUL.
    Abstract(Vec<u8>),
    /// Unnamed, or refused where the address was no longer known.
    Unknown,
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> BpfError {
    move |source| BpfError::Map { name, source }
}

fn ignore_missing(r: Result<(), MapError>, name: &'static str) -> Result<(), BpfError> {
    match r {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(source) => Err(BpfError::Map { name, source }),
    }
}

pub struct ContainMaps {
    profiles: Mutex<HashMap<MapData, u64, u32>>,
    files: Mutex<LpmTrie<MapData, [u8; FILE_KEY_DATA], FileVerdict>>,
    unix_allow: Mutex<HashMap<MapData, UnixKey, u8>>,
    lost: Mutex<PerCpuArray<MapData, u64>>,
}

impl ContainMaps {
    /// Takes the containment maps out of the loaded object (call after
    /// attach_all, like EnforcementMaps::from_ebpf).
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<ContainMaps, BpfError> {
        Ok(ContainMaps {
            profiles: Mutex::new(take(ebpf, PROFILES)?),
            files: Mutex::new(take(ebpf, FILE_RULES)?),
            unix_allow: Mutex::new(take(ebpf, UNIX_ALLOW)?),
            lost: Mutex::new(take(ebpf, LOST)?),
        })
    }

    /// Installs (replacing) the kernel side of one instance's containment,
    /// keyed by the instance cgroup id. Rules are validated before any map
    /// is touched.
    pub fn install(&self, cgroup_id: u64, profile: &KernelProfile) -> Result<(), BpfError> {
        let files = contain_decode::file_entries(cgroup_id, &profile.files)?;
        let unix = contain_decode::unix_keys(cgroup_id, &profile.unix_allow)?;
        let mut profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let mut trie = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut allow = self.unix_allow.lock().unwrap_or_else(|e| e.into_inner());

        for (&(bits, data), &verdict) in &files {
            let value = FileVerdict {
                verdict,
                _pad: [0; 3],
            };
            trie.insert(&FileKey::new(bits, data), &value, 0)
                .map_err(map_err(FILE_RULES))?;
        }
        for key in &unix {
            allow.insert(key, &1, 0).map_err(map_err(UNIX_ALLOW))?;
        }
        remove_files(&mut trie, cgroup_id, |bits, data| {
            !files.contains_key(&(bits, *data))
        })?;
        remove_unix(&mut allow, cgroup_id, |k| !unix.contains(k))?;
        profiles
            .insert(&cgroup_id, &PROFILE_ACTIVE, 0)
            .map_err(map_err(PROFILES))
    }

    /// Removes it (instance gone). Missing entries are not an error.
    pub fn remove(&self, cgroup_id: u64) -> Result<(), BpfError> {
        let mut profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let mut trie = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut allow = self.unix_allow.lock().unwrap_or_else(|e| e.into_inner());
        ignore_missing(profiles.remove(&cgroup_id), PROFILES)?;
        remove_files(&mut trie, cgroup_id, |_, _| true)?;
        remove_unix(&mut allow, cgroup_id, |_| true)
    }

    /// What the maps hold for `cgroup_id`: profile flag, trie entries as
    /// (prefix bits, data, verdict), allowed unix keys.
    #[cfg(test)]
    pub(super) fn snapshot(&self, cgroup_id: u64) -> Snapshot {
        let profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let trie = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let allow = self.unix_allow.lock().unwrap_or_else(|e| e.into_inner());
        let mut files: Vec<_> = trie
            .iter()
            .map(|kv| kv.unwrap())
            .filter(|(k, _)| contain_decode::file_key_owner(&k.data()) == cgroup_id)
            .map(|(k, v)| (k.prefix_len(), k.data(), v.verdict))
            .collect();
        files.sort();
        let mut unix: Vec<_> = allow
            .keys()
            .map(|k| k.unwrap())
            .filter(|k| k.cgroup_id == cgroup_id)
            .map(|k| k.path)
            .collect();
        unix.sort();
        Snapshot {
            profile: profiles.get(&cgroup_id, 0).ok(),
            files,
            unix,
        }
    }

    /// Events lost because the ring buffer was full, summed over CPUs,
    /// since the maps were created.
    pub fn lost_events(&self) -> Result<u64, BpfError> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        let per_cpu = lost.get(&0, 0).map_err(map_err(LOST))?;
        Ok(per_cpu.iter().sum())
    }
}

#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub profile: Option<u32>,
    pub files: Vec<(u32, [u8; FILE_KEY_DATA], u8)>,
    pub unix: Vec<[u8; agent_common::SUN_PATH]>,
}

/// Removes the trie entries of `cgroup_id` that `stale` selects.
fn remove_files(
    trie: &mut LpmTrie<MapData, [u8; FILE_KEY_DATA], FileVerdict>,
    cgroup_id: u64,
    stale: impl Fn(u32, &[u8; FILE_KEY_DATA]) -> bool,
) -> Result<(), BpfError> {
    let mut doomed = Vec::new();
    for key in trie.keys() {
        let key = key.map_err(map_err(FILE_RULES))?;
        let (bits, data) = (key.prefix_len(), key.data());
        if contain_decode::file_key_owner(&data) == cgroup_id && stale(bits, &data) {
            doomed.push(key);
        }
    }
    for key in doomed {
        ignore_missing(trie.remove(&key), FILE_RULES)?;
    }
    Ok(())
}

fn remove_unix(
    allow: &mut HashMap<MapData, UnixKey, u8>,
    cgroup_id: u64,
    stale: impl Fn(&UnixKey) -> bool,
) -> Result<(), BpfError> {
    let mut doomed = Vec::new();
    for key in allow.keys() {
        let key = key.map_err(map_err(UNIX_ALLOW))?;
        if key.cgroup_id == cgroup_id && stale(&key) {
            doomed.push(key);
        }
    }
    for key in doomed {
        ignore_missing(allow.remove(&key), UNIX_ALLOW)?;
    }
    Ok(())
}

/// Async reader of the observers' ring buffer.
pub struct ContainEvents {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl ContainEvents {
    /// Must be called inside a tokio runtime (the fd joins its reactor).
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<ContainEvents, BpfError> {
        let ring: RingBuf<MapData> = take(ebpf, EVENTS)?;
        // SAFETY: the RingBuf owns its map fd (MapData holds an OwnedFd)
        // and keeps it open, and the same, for as long as the AsyncFd owns it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| BpfError::Io {
                path: EVENTS.into(),
                source: e.into_parts().1,
            })?;
        Ok(ContainEvents { ring })
    }

    /// The next refusal. Records that cannot be decoded (a newer kernel
    /// object than this daemon) are logged and skipped.
    pub async fn next(&mut self) -> std::io::Result<ContainEvent> {
        loop {
            let mut guard = self.ring.readable_mut().await?;
            while let Some(item) = guard.get_inner_mut().next() {
                match contain_decode::decode(&item) {
                    Ok(ev) => return Ok(ev),
                    Err(e) => tracing::warn!("containment event skipped: {e}"),
                }
            }
            guard.clear_ready();
        }
    }
}
