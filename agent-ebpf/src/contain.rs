//! Host containment decisions Landlock cannot make (LSM cgroup programs,
//! attached at the Cordon parent, so they run only for agent tasks).
//!
//! - file_open: a per-profile deny list with allow overrides, keyed by
//!   path prefix (LPM trie); a sub-agent is bound by every profiled
//!   ancestor, so any level's deny refuses.
//! - socket_connect / socket_sendmsg: pathname AF_UNIX addresses must be
//!   on every profiled level's allow list. Abstract and unnamed addresses
//!   are left to Landlock's scoping; other families to connect4/6.
//!
//! Returning 0 refuses with EPERM, 1 lets the next LSM decide.
use core::{mem::MaybeUninit, ptr::write_volatile};

use agent_common::{
    AF_UNIX, FILE_KEY_DATA, FILE_KEY_PATH, MAX_KILL_DEPTH, SUN_PATH, UnixKey, VERDICT_DENY,
};
use aya_ebpf::{macros::lsm_cgroup, maps::lpm_trie::Key, programs::LsmContext};

use crate::{
    kernel::{
        ENAMETOOLONG, ancestor_below, any_profile, d_path, d_path_prefix, file_path, koff, read_at,
    },
    maps::{CONFIG, FILE_RULES, PROFILES},
};

const ALLOW: i32 = 1;
const DENY: i32 = 0;

const _: () = assert!(size_of::<FileKeyBuf>() == 264);

/// The trie key, laid out so the cgroup id and path start 8-byte aligned
/// (the verifier refuses misaligned stack stores): `prefix_len` sits at
/// offset 4 and the key passed to the map starts there.
#[repr(C, align(8))]
struct FileKeyBuf {
    _align: u32,
    prefix_len: u32,
    cgroup_be: u64,
    path: [u8; FILE_KEY_PATH],
}

impl FileKeyBuf {
    /// Zeroes the buffer in place with 33 word stores: a plain
    /// initialiser becomes a call to a byte-wise memset (~1000 instructions
    /// on every open) and a move would double the stack. The verifier wants
    /// the bytes initialised before bpf_d_path writes them.
    #[inline(always)]
    fn zero_in_place(buf: &mut MaybeUninit<FileKeyBuf>) -> &mut FileKeyBuf {
        let words = buf.as_mut_ptr().cast::<u64>();
        let mut w = 0;
        while w < size_of::<FileKeyBuf>() / 8 {
            // SAFETY: in bounds (the size is a multiple of 8, align 8);
            // volatile so LLVM does not fold the stores back into memset.
            unsafe { write_volatile(words.add(w), 0) };
            w += 1;
        }
        // SAFETY: every byte was written; all fields are plain integers.
        unsafe { buf.assume_init_mut() }
    }

    #[inline(always)]
    fn key(&self) -> &Key<[u8; FILE_KEY_DATA]> {
        // SAFETY: Key is repr(C, packed) {u32, [u8; 256]}: exactly the 260
        // bytes from `prefix_len` on, all initialised.
        unsafe { &*core::ptr::addr_of!(self.prefix_len).cast() }
    }
}

#[lsm_cgroup(hook = "file_open")]
pub fn cordon_file_open(ctx: LsmContext) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    let parent_level = cfg.parent_level;
    if !any_profile(parent_level) {
        return ALLOW;
    }
    let file: *const u8 = ctx.arg(0);
    let mut slot = MaybeUninit::uninit();
    let buf = FileKeyBuf::zero_in_place(&mut slot);
    let p = file_path(file);
    let mut n = d_path(p, buf.path.as_mut_ptr(), FILE_KEY_PATH as u32);
    if n == -ENAMETOOLONG {
        // Rules are short: the first FILE_KEY_PATH bytes decide.
        if d_path_prefix(p, buf.path.as_mut_ptr(), FILE_KEY_PATH as u32) <= 0 {
            return DENY;
        }
        n = FILE_KEY_PATH as i64;
    } else if n <= 0 || n > FILE_KEY_PATH as i64 {
        // Fail closed: a profiled task opening something we cannot name.
        return DENY;
    }
    buf.prefix_len = ((8 + n) * 8) as u32;

    let mut i = 1;
    while i <= MAX_KILL_DEPTH {
        let id = ancestor_below(parent_level, i);
        if id == 0 {
            break;
        }
        // SAFETY: read-only lookup of a plain u32.
        if unsafe { PROFILES.get(&id) }.is_some() {
            buf.cgroup_be = id.to_be();
            if FILE_RULES
                .get(buf.key())
                .is_some_and(|v| v.verdict == VERDICT_DENY)
            {
                return DENY;
            }
        }
        i += 1;
    }
    ALLOW
}

#[lsm_cgroup(hook = "socket_connect")]
pub fn cordon_unix_connect(ctx: LsmContext) -> i32 {
    let address: *const u8 = ctx.arg(1);
    let addrlen: i32 = ctx.arg(2);
    unix_check(address, addrlen)
}

/// Only datagrams with an explicit address: a connected socket's peer was
/// checked at connect.
#[lsm_cgroup(hook = "socket_sendmsg")]
pub fn cordon_unix_sendmsg(ctx: LsmContext) -> i32 {
    let msg: *const u8 = ctx.arg(1);
    let Some(name) = read_at::<u64>(msg, koff!(msghdr_msg_name)) else {
        return DENY;
    };
    if name == 0 {
        return ALLOW;
    }
    let Some(namelen) = read_at::<i32>(msg, koff!(msghdr_msg_namelen)) else {
        return DENY;
    };
    unix_check(name as *const u8, namelen)
}

#[inline(always)]
fn unix_check(address: *const u8, addrlen: i32) -> i32 {
    if addrlen < 2 {
        return ALLOW; // the kernel refuses it itself
    }
    let Some(family) = read_at::<u16>(address, 0) else {
        return DENY;
    };
    if family != AF_UNIX {
        return ALLOW;
    }
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    let parent_level = cfg.parent_level;
    if !any_profile(parent_level) {
        return ALLOW;
    }
    let len = if addrlen - 2 > SUN_PATH as i32 {
        SUN_PATH
    } else {
        (addrlen - 2) as usize
    };
    // The kernel's copy lives in a sockaddr_storage (128 bytes): reading
    // all of sun_path is in bounds; bytes past `len` are cleared in decide.
    let Some(sun) = read_at::<[u8; SUN_PATH]>(address, 2) else {
        return DENY;
    };
    let mut key = UnixKey {
        cgroup_id: 0,
        path: [0; SUN_PATH],
        _pad: [0; 4],
    };
    crate::unix::decide(&sun, len, parent_level, &mut key)
}
