//! Locating the cgroup2 hierarchy. Its mount point differs between hosts (`/sys/fs/cgroup`,
//! `/sys/fs/cgroup/unified` on hybrid setups), so it is always discovered, never assumed.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The cgroup2 mount of this machine, as seen by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCgroupRoot {
    mount: PathBuf,
}

impl TestCgroupRoot {
    /// Read `/proc/self/mountinfo` and find the cgroup2 mount.
    pub fn discover() -> Result<Self> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).ctx(|| format!("read {}", path.display()))?;
        let mount = cgroup2_mount_in(&text).ok_or_else(|| {
            Error::Setup(format!(
                "no cgroup2 filesystem listed in {}",
                path.display()
            ))
        })?;
        Ok(Self { mount })
    }

    /// Mount point of the cgroup2 hierarchy.
    pub fn mount(&self) -> &Path {
        &self.mount
    }
}

/// First cgroup2 mount point in mountinfo `text`.
pub fn cgroup2_mount_in(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        // Optional fields end at " - ", after which come fstype, source, super options.
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_octal(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_cgroup2_on_hybrid_layout_not_v1_or_tmpfs() {
        assert_eq!(
            cgroup2_mount_in(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn no_cgroup2_line_gives_none() {
        assert_eq!(cgroup2_mount_in(&HYBRID.replace("cgroup2", "cgroup")), None);
    }

    #[test]
    fn unescapes_spaces_in_mount_point() {
        let line = "41 31 0:38 / /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount_in(line), Some(PathBuf::from("/mnt/my cg")));
    }
}
