//! Pure translations between the containment API and the kernel's bytes:
//! profiles to map keys, ring-buffer records to events. No syscalls, so
//! all of it is unit-tested without root.
use std::{collections::BTreeMap, os::unix::ffi::OsStrExt, path::Path};

use agent_common::{
    ADDR_ABSTRACT, ADDR_PATHNAME, ContainRawEvent, EVENT_DATA, EVENT_FILE_OPEN, EVENT_PTRACE,
    EVENT_SIGNAL, EVENT_UNIX_CONNECT, FILE_KEY_DATA, FILE_KEY_PATH, SUN_PATH, UnixKey,
    VERDICT_ALLOW, VERDICT_DENY,
};

use super::contain::{ContainEvent, ContainEventKind, FileRule, ProfileError, UnixAddr};

/// An LPM-trie key: prefix length in bits and the data it covers.
pub type FileKey = aya::maps::lpm_trie::Key<[u8; FILE_KEY_DATA]>;

/// The trie entries of one profile, keyed by (prefix bits, data) so a
/// replace can tell which existing entries are stale. When two rules give
/// the same key opposite verdicts, deny wins.
pub fn file_entries(
    cgroup_id: u64,
    rules: &[FileRule],
) -> Result<BTreeMap<(u32, [u8; FILE_KEY_DATA]), u8>, ProfileError> {
    let mut out = BTreeMap::new();
    for rule in rules {
        let path = checked_path(&rule.path, FILE_KEY_PATH - 1)?;
        let verdict = if rule.deny {
            VERDICT_DENY
        } else {
            VERDICT_ALLOW
        };
        // The path itself: NUL-terminated so `/a/b` does not cover `/a/bc`.
        let mut exact = path.to_vec();
        exact.push(0);
        let mut prefixes = vec![exact];
        if rule.subtree {
            let mut dir = path.to_vec();
            if !dir.ends_with(b"/") {
                dir.push(b'/');
            }
            prefixes.push(dir);
        }
        for p in prefixes {
            let entry = out.entry(file_key_parts(cgroup_id, &p)).or_insert(verdict);
            *entry = (*entry).max(verdict);
        }
    }
    Ok(out)
}

/// (prefix bits, data) for `bytes` under the profile `cgroup_id`.
pub fn file_key_parts(cgroup_id: u64, bytes: &[u8]) -> (u32, [u8; FILE_KEY_DATA]) {
    let mut data = [0u8; FILE_KEY_DATA];
    data[..8].copy_from_slice(&cgroup_id.to_be_bytes());
    data[8..8 + bytes.len()].copy_from_slice(bytes);
    (((8 + bytes.len()) * 8) as u32, data)
}

/// The profile (cgroup id) a trie key belongs to.
pub fn file_key_owner(data: &[u8; FILE_KEY_DATA]) -> u64 {
    let mut id = [0u8; 8];
    id.copy_from_slice(&data[..8]);
    u64::from_be_bytes(id)
}

/// Allow-list keys for pathname unix sockets, exactly as the kernel
/// program builds them from the agent's address.
pub fn unix_keys(
    cgroup_id: u64,
    paths: &[std::path::PathBuf],
) -> Result<Vec<UnixKey>, ProfileError> {
    paths
        .iter()
        .map(|p| {
            let bytes = checked_path(p, SUN_PATH)?;
            let mut key = UnixKey {
                cgroup_id,
                path: [0; SUN_PATH],
                _pad: [0; 4],
            };
            key.path[..bytes.len()].copy_from_slice(bytes);
            Ok(key)
        })
        .collect()
}

fn checked_path(path: &Path, max: usize) -> Result<&[u8], ProfileError> {
    let bytes = path.as_os_str().as_bytes();
    if !bytes.starts_with(b"/") {
        return Err(ProfileError::NotAbsolute(path.into()));
    }
    if bytes.contains(&0) {
        return Err(ProfileError::Nul(path.into()));
    }
    if bytes.len() > max {
        return Err(ProfileError::TooLong {
            path: path.into(),
            max,
        });
    }
    Ok(bytes)
}

/// Why a ring-buffer record could not be read as an event.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes, expected {1}")]
    Size(usize, usize),
    #[error("unknown event kind {0}")]
    Kind(u32),
}

pub fn decode(bytes: &[u8]) -> Result<ContainEvent, DecodeError> {
    let want = std::mem::size_of::<ContainRawEvent>();
    if bytes.len() < want {
        return Err(DecodeError::Size(bytes.len(), want));
    }
    // SAFETY: ContainRawEvent is plain integers; the length was checked and
    // read_unaligned makes no alignment assumption.
    let raw: ContainRawEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let data = &raw.data[..(raw.data_len as usize).min(EVENT_DATA)];
    let kind = match raw.kind {
        EVENT_FILE_OPEN => {
            let mut path = String::from_utf8_lossy(until_nul(data)).into_owned();
            if raw.truncated != 0 {
                path.push('…');
            }
            ContainEventKind::FileOpen {
                path,
                flags: raw.arg,
            }
        }
        EVENT_UNIX_CONNECT => ContainEventKind::UnixConnect {
            addr: unix_addr(raw.addr_kind, &data[..data.len().min(SUN_PATH)]),
        },
        EVENT_PTRACE => ContainEventKind::Ptrace {
            target_pid: raw.target_pid,
            mode: raw.arg,
        },
        EVENT_SIGNAL => ContainEventKind::Signal {
            target_pid: raw.target_pid,
            signal: raw.arg as i32,
        },
        other => return Err(DecodeError::Kind(other)),
    };
    Ok(ContainEvent {
        cgroup_id: raw.cgroup_id,
        pid: raw.pid,
        tid: raw.tid,
        uid: raw.uid,
        errno: raw.ret.saturating_neg(),
        kind,
    })
}

fn until_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

fn unix_addr(kind: u8, sun: &[u8]) -> UnixAddr {
    match kind {
        ADDR_PATHNAME => UnixAddr::Pathname(String::from_utf8_lossy(until_nul(sun)).into_owned()),
        // The leading NUL marks the namespace; the name is every byte after.
        ADDR_ABSTRACT if !sun.is_empty() => UnixAddr::Abstract(sun[1..].to_vec()),
        _ => UnixAddr::Unknown,
    }
}
