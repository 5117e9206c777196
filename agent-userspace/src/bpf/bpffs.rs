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
