//! The devices a contained agent may open, decided by the cgroup device
//! program (`agent-ebpf` `device.rs`) on every open and mknod of a device
//! node by a task in a contained instance.
//!
//! Landlock governs device nodes by path only, and file modes are all that
//! stands between a uid and a device it owns: a real-root agent (no user
//! namespace on the host) owns every root-owned node, so it could read the
//! raw disk (and with it the vault key, whatever the path rules say), the
//! keyboard (`/dev/input`) or a microphone. The cgroup device check runs
//! whatever the uid, the path or the mount the node was reached through.
//!
//! Allowed: what any program expects (null, zero, full, random, urandom),
//! the controlling terminal (`/dev/tty`), and pseudo-terminals (`/dev/ptmx`
//! and its slaves; the agent's `/dev/pts` is an instance of its own, so the
//! slaves it can name are its own ptys and the terminal it was started on).
//! Refused: every block device, every other character device (virtual
//! consoles, serial ports, input, sound, video, GPUs, `/dev/mem`, `kvm`,
//! `fuse`, `tun`), and creating any device node.

/// `bpf_cgroup_dev_ctx.access_type`: the device type in the low 16 bits...
pub const DEVCG_DEV_BLOCK: u32 = 1;
pub const DEVCG_DEV_CHAR: u32 = 2;
/// ...and the access in the high 16 bits.
pub const DEVCG_ACC_MKNOD: u32 = 1;
pub const DEVCG_ACC_READ: u32 = 2;
pub const DEVCG_ACC_WRITE: u32 = 4;

/// Major numbers (Documentation/admin-guide/devices.txt).
const MEM: u32 = 1;
const TTYAUX: u32 = 5;
/// Unix98 pty slaves take majors 136 to 143.
const PTS_FIRST: u32 = 136;
const PTS_LAST: u32 = 143;

/// Whether a contained agent may do `access_type` (as the kernel hands it
/// to the program) on device `major:minor`.
#[inline(always)]
pub fn device_allowed(access_type: u32, major: u32, minor: u32) -> bool {
    let kind = access_type & 0xffff;
    let access = access_type >> 16;
    if kind != DEVCG_DEV_CHAR || access & DEVCG_ACC_MKNOD != 0 {
        return false;
    }
    match major {
        // null, zero, full, random, urandom (not mem, kmem, port, kmsg).
        MEM => matches!(minor, 3 | 5 | 7 | 8 | 9),
        // tty (the caller's controlling terminal) and ptmx; not console.
        TTYAUX => matches!(minor, 0 | 2),
        PTS_FIRST..=PTS_LAST => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: u32 = DEVCG_ACC_READ << 16;
    const RW: u32 = (DEVCG_ACC_READ | DEVCG_ACC_WRITE) << 16;
    const MKNOD: u32 = DEVCG_ACC_MKNOD << 16;

    fn char_dev(access: u32, major: u32, minor: u32) -> bool {
        device_allowed(DEVCG_DEV_CHAR | access, major, minor)
    }

    #[test]
    fn what_every_program_opens_is_allowed() {
        for minor in [3, 5, 7, 8, 9] {
            assert!(char_dev(RW, 1, minor), "1:{minor}");
        }
        assert!(char_dev(RW, 5, 0), "/dev/tty");
        assert!(char_dev(RW, 5, 2), "/dev/ptmx");
        assert!(char_dev(RW, 136, 0) && char_dev(RW, 143, 1_048_575), "pts");
    }

    #[test]
    fn block_devices_are_refused_whatever_the_access() {
        for access in [READ, RW, MKNOD] {
            assert!(!device_allowed(DEVCG_DEV_BLOCK | access, 7, 0), "loop0");
            assert!(!device_allowed(DEVCG_DEV_BLOCK | access, 8, 0), "sda");
            assert!(!device_allowed(DEVCG_DEV_BLOCK | access, 253, 0), "vda");
        }
    }

    #[test]
    fn the_rest_of_the_character_devices_are_refused() {
        let refused = [
            (1, 1, "/dev/mem"),
            (1, 2, "/dev/kmem"),
            (1, 4, "/dev/port"),
            (1, 11, "/dev/kmsg"),
            (4, 1, "/dev/tty1"),
            (4, 64, "/dev/ttyS0"),
            (5, 1, "/dev/console"),
            (10, 229, "/dev/fuse"),
            (10, 232, "/dev/kvm"),
            (13, 64, "/dev/input/event0"),
            (116, 0, "ALSA"),
            (81, 0, "/dev/video0"),
            (226, 128, "/dev/dri/renderD128"),
            (135, 0, "just below the pts majors"),
            (144, 0, "just above them"),
        ];
        for (major, minor, what) in refused {
            assert!(!char_dev(RW, major, minor), "{what} {major}:{minor}");
        }
    }

    #[test]
    fn no_device_node_may_be_made_even_an_allowed_one() {
        assert!(!char_dev(MKNOD, 1, 3));
        assert!(!char_dev(MKNOD | RW, 136, 4));
    }
}
