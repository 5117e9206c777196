//! Host checks: what the kernel must offer before Cordon can enforce
//! anything. The judgements are pure functions of the text the kernel
//! exposes (mountinfo, the LSM list), so each is tested on sample hosts.
use std::path::Path;

use super::report::Check;
use crate::bpf::load::lsm_listed;

const SECTION: &str = "host";
const LSM_LIST: &str = "/sys/kernel/security/lsm";
/// Landlock ABI 6 adds abstract unix socket and signal scoping, which
/// containment relies on.
const LANDLOCK_MIN_ABI: i64 = 6;

pub fn checks() -> Vec<Check> {
    let mountinfo = std::fs::read_to_string(crate::mountinfo::PATH).unwrap_or_default();
    vec![
        cgroup2(&mountinfo),
        bpf_syscall(),
        btf(),
        match std::fs::read_to_string(LSM_LIST) {
            Ok(list) => lsms(&list),
            Err(e) => Check::fail(
                SECTION,
                "lsm",
                format!("cannot read {LSM_LIST}: {e}"),
                "mount securityfs (mount -t securityfs securityfs /sys/kernel/security) and run doctor as root",
            ),
        },
        landlock_abi(crate::contain::landlock::abi_version()),
        bpffs(&mountinfo),
    ]
}

/// The cgroup v2 hierarchy, wherever this host mounts it (hybrid hosts put
/// it at /sys/fs/cgroup/unified).
pub fn cgroup2(mountinfo: &str) -> Check {
    match crate::cgroup::mount::find_cgroup2(mountinfo) {
        Some(p) => Check::pass(SECTION, "cgroup2", format!("mounted at {}", p.display())),
        None => Check::fail(
            SECTION,
            "cgroup2",
            "no cgroup2 filesystem is mounted",
            "boot with systemd.unified_cgroup_hierarchy=1, or mount one: mount -t cgroup2 none /sys/fs/cgroup/unified",
        ),
    }
}

/// bpffs at /sys/fs/bpf, where the daemon pins its programs so that
/// enforcement outlives a restart.
pub fn bpffs(mountinfo: &str) -> Check {
    let mounted = crate::mountinfo::mounts(mountinfo)
        .any(|m| m.fstype == "bpf" && m.point == crate::bpf::bpffs::BPFFS);
    if mounted {
        Check::pass(
            SECTION,
            "bpffs",
            format!("mounted at {}", crate::bpf::bpffs::BPFFS),
        )
    } else {
        Check::fail(
            SECTION,
            "bpffs",
            format!(
                "nothing of type bpf is mounted at {}",
                crate::bpf::bpffs::BPFFS
            ),
            "mount it (mount -t bpf bpf /sys/fs/bpf) and add it to /etc/fstab; the daemon mounts it at start, but pins made before a remount are lost",
        )
    }
}

/// Containment needs Landlock (file and socket allowlists); the BPF LSM
/// carries the optional second deny list, so its absence only warns.
pub fn lsms(list: &str) -> Check {
    let missing: Vec<&str> = ["landlock", "bpf"]
        .into_iter()
        .filter(|l| !lsm_listed(list, l))
        .collect();
    if missing.is_empty() {
        return Check::pass(SECTION, "lsm", format!("active: {}", list.trim()));
    }
    let mut wanted: Vec<&str> = list.trim().split(',').filter(|s| !s.is_empty()).collect();
    wanted.extend(&missing);
    let detail = format!(
        "{} not active (active: {})",
        missing.join(" and "),
        list.trim()
    );
    let fix = format!(
        "add lsm={} to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot",
        wanted.join(",")
    );
    if missing.contains(&"landlock") {
        Check::fail(SECTION, "lsm", detail, fix)
    } else {
        Check::warn(
            SECTION,
            "lsm",
            format!("{detail}: the optional BPF LSM layer cannot attach"),
            fix,
        )
    }
}

pub fn landlock_abi(abi: i64) -> Check {
    if abi >= LANDLOCK_MIN_ABI {
        Check::pass(SECTION, "landlock", format!("ABI {abi}"))
    } else if abi <= 0 {
        Check::fail(
            SECTION,
            "landlock",
            "Landlock is not available",
            "use a kernel built with CONFIG_SECURITY_LANDLOCK and landlock in lsm=",
        )
    } else {
        Check::fail(
            SECTION,
            "landlock",
            format!("ABI {abi}, containment needs {LANDLOCK_MIN_ABI} (Linux 6.12)"),
            "upgrade the kernel to 6.12 or later",
        )
    }
}

/// The cgroup programs load through bpf(2): probed by asking the kernel to
/// verify a program of the type forced egress uses.
fn bpf_syscall() -> Check {
    use aya::programs::ProgramType;
    match aya::sys::is_program_supported(ProgramType::CgroupSockAddr) {
        Ok(true) => Check::pass(SECTION, "bpf", "cgroup sock_addr programs load"),
        Ok(false) => Check::fail(
            SECTION,
            "bpf",
            "the kernel refuses cgroup sock_addr programs",
            "use a kernel built with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF",
        ),
        Err(e) => Check::fail(
            SECTION,
            "bpf",
            format!("cannot probe bpf(2): {e}"),
            "run doctor as root; check that no seccomp or lockdown policy forbids bpf(2)",
        ),
    }
}

/// Kernel BTF gives the containment programs their structure offsets.
fn btf() -> Check {
    let path = Path::new(crate::bpf::btf::VMLINUX);
    match crate::bpf::btf::Btf::from_file(path).and_then(|b| b.kernel_offsets()) {
        Ok(_) => Check::pass(
            SECTION,
            "btf",
            format!("{} has the types needed", path.display()),
        ),
        Err(e) => Check::fail(
            SECTION,
            "btf",
            format!("{}: {e}", path.display()),
            "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    #[test]
    fn a_hybrid_host_finds_cgroup2_under_unified() {
        let mi = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let c = cgroup2(mi);
        assert_eq!(c.status, Status::Pass);
        assert!(c.detail.contains("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn a_v1_only_host_fails_cgroup2_with_a_fix() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        let c = cgroup2(mi);
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("unified_cgroup_hierarchy"));
    }

    #[test]
    fn bpffs_must_be_mounted_at_sys_fs_bpf() {
        let ok = "48 23 0:40 / /sys/fs/bpf rw,nosuid - bpf bpf rw,mode=700\n";
        assert_eq!(bpffs(ok).status, Status::Pass);
        let elsewhere = "48 23 0:40 / /mnt/bpf rw,nosuid - bpf bpf rw\n";
        assert_eq!(bpffs(elsewhere).status, Status::Fail);
        let tmpfs = "48 23 0:40 / /sys/fs/bpf rw - tmpfs tmpfs rw\n";
        assert_eq!(bpffs(tmpfs).status, Status::Fail);
    }

    #[test]
    fn missing_lsms_are_named_and_the_fix_keeps_the_active_ones() {
        assert_eq!(
            lsms("lockdown,capability,landlock,bpf\n").status,
            Status::Pass
        );
        let c = lsms("lockdown,capability,apparmor\n");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.starts_with("landlock and bpf not active"));
        assert!(
            c.fix
                .unwrap()
                .contains("lsm=lockdown,capability,apparmor,landlock,bpf")
        );
        assert_eq!(lsms("capability,landlock").status, Status::Warn);
    }

    #[test]
    fn landlock_below_abi_6_fails() {
        assert_eq!(landlock_abi(7).status, Status::Pass);
        assert_eq!(landlock_abi(5).status, Status::Fail);
        assert_eq!(landlock_abi(-1).status, Status::Fail);
    }
}
