//! bpffs is where links and maps are pinned so enforcement outlives the
//! daemon. Some hosts boot without it mounted.
use std::path::{Path, PathBuf};

use super::BpfError;

pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Mounts bpffs at /sys/fs/bpf unless something is mounted there already.
pub fn ensure_mounted() -> Result<(), BpfError> {
    let path = Path::new(BPFFS);
    if crate::cgroup::mount::is_fs_type(path, BPF_FS_MAGIC) {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(|source| BpfError::Io {
        path: path.into(),
        source,
    })?;
    nix::mount::mount(
        Some("bpf"),
        path,
        Some("bpf"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .map_err(|source| BpfError::Mount {
        path: path.into(),
        source,
    })?;
    tracing::info!("mounted bpffs at {BPFFS}");
    Ok(())
}

/// The versioned pin directory for one Cordon namespace. The version is
/// the map ABI, so a daemon never adopts maps of another layout.
pub fn pin_dir(namespace: &str) -> PathBuf {
    Path::new(BPFFS)
        .join(namespace)
        .join(format!("v{}", agent_common::MAP_ABI_VERSION))
}

/// Pin directories of other map ABI versions beside `pin_dir` (left by a
/// daemon of another version), to be released once this version's
/// programs are attached and configured.
pub fn other_versions(pin_dir: &Path) -> Vec<PathBuf> {
    let (Some(ns), Some(own)) = (pin_dir.parent(), pin_dir.file_name()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(ns) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name() != own)
        .filter(|e| e.file_name().to_str().is_some_and(is_version_dir))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `v` followed by a number: the name `pin_dir` gives a version.
pub fn is_version_dir(name: &str) -> bool {
    name.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbered_version_directories_count_as_versions() {
        assert!(is_version_dir("v1"));
        assert!(is_version_dir("v12"));
        assert!(!is_version_dir("v"));
        assert!(!is_version_dir("vx"));
        assert!(!is_version_dir("link_cordon_connect4"));
        assert!(!is_version_dir("v2-backup"));
    }

    #[test]
    fn other_versions_beside_the_pin_dir_are_found_and_its_own_is_not() {
        let ns = tempfile::tempdir().unwrap();
        for d in ["v1", "v2", "v3", "notes"] {
            std::fs::create_dir(ns.path().join(d)).unwrap();
        }
        let own = ns.path().join("v2");
        assert_eq!(
            other_versions(&own),
            [ns.path().join("v1"), ns.path().join("v3")]
        );
    }
}
