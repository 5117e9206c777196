//! The mounts this process sees, read from `/proc/self/mountinfo`: where
//! cgroup2 and bpffs are mounted, and whether `/proc` hides other processes
//! (`contain::host_view`), are all read from it, never assumed.
//!
//! A line is `id parent maj:min root mountpoint opts [optional...] - fstype
//! source superopts`. The kernel lists a mount after the mounts it covers.

pub const PATH: &str = "/proc/self/mountinfo";

/// One mount.
pub struct Mount<'a> {
    /// Where it is mounted, unescaped.
    pub point: String,
    pub fstype: &'a str,
    /// The filesystem's own options (`hidepid=...` for a procfs, say).
    pub super_opts: &'a str,
}

/// The mounts of a mountinfo text, in its order.
pub fn mounts(mountinfo: &str) -> impl DoubleEndedIterator<Item = Mount<'_>> {
    mountinfo.lines().filter_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let point = pre.split_whitespace().nth(4)?;
        let mut post = post.split_whitespace();
        let fstype = post.next()?;
        let super_opts = post.nth(1).unwrap_or_default();
        Some(Mount {
            point: unescape_octal(point),
            fstype,
            super_opts,
        })
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_its_mount_point_type_and_super_options_past_optional_fields() {
        let text = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate\n\
                    301 23 0:77 / /mnt/my\\040proc rw - proc proc rw,hidepid=ptraceable\n\
                    no separator here\n";
        let m: Vec<_> = mounts(text)
            .map(|m| (m.point, m.fstype, m.super_opts))
            .collect();
        assert_eq!(
            m,
            [
                ("/sys/fs/cgroup".to_string(), "cgroup2", "rw,nsdelegate"),
                ("/mnt/my proc".to_string(), "proc", "rw,hidepid=ptraceable"),
            ]
        );
    }
}
