//! Finding the cgroup v2 hierarchy. Hosts differ (`/sys/fs/cgroup` on
//! unified hosts, `/sys/fs/cgroup/unified` in hybrid mode), so it is read
//! from mountinfo, never assumed.
use std::path::{Path, PathBuf};

use super::CgroupError;
use crate::mountinfo;

/// The mount point of the cgroup2 filesystem as this process sees it.
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let text = std::fs::read_to_string(mountinfo::PATH).map_err(|source| CgroupError::Io {
        path: PathBuf::from(mountinfo::PATH),
        source,
    })?;
    find_cgroup2(&text).ok_or(CgroupError::NoCgroup2)
}

/// The first cgroup2 mount in a mountinfo text.
pub fn find_cgroup2(mountinfo: &str) -> Option<PathBuf> {
    mountinfo::mounts(mountinfo)
        .find(|m| m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.point))
}

/// Is `path` on a filesystem of the given magic number (statfs)?
pub fn is_fs_type(path: &Path, magic: i64) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == magic)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hybrid_mode_unified_mount() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find_cgroup2(text),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn finds_unified_host_mount_with_optional_fields() {
        let text =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(find_cgroup2(text), Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn reports_none_without_cgroup2() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
        assert_eq!(find_cgroup2(text), None);
    }

    #[test]
    fn unescapes_spaces_in_mount_points() {
        let text = "41 31 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2(text), Some(PathBuf::from("/mnt/my cg")));
    }
}
