//! The pathname unix-socket allow list on the cgroup sock_addr unix hooks
//! (`BPF_CGROUP_UNIX_CONNECT` / `_SENDMSG`, kernel 6.7+). Unlike the LSM
//! cgroup programs in `contain.rs` these are not trampoline programs, so
//! they load on kernels that refuse every trampoline (lockdown VMs).
//!
//! aya has no attach type for them: the functions sit in `cgroup/connect4`
//! and `cgroup/sendmsg4` sections only so aya-obj parses them, and the
//! daemon loads them itself with the unix attach types (agent-userspace
//! `bpf/raw_prog.rs`). They must never be loaded as inet programs.
//!
//! The kernel runs them after validating the address (family AF_UNIX,
//! length >= 2) and only for sockets created in a cgroup below the parent;
//! the decision uses the calling task's ancestors, as the LSM programs do.
//! Returning 0 fails connect()/sendmsg() with EPERM.
use core::ptr::{addr_of, read_volatile};

use agent_common::{
    AF_UNIX, EVENT_UNIX_CONNECT, MAX_KILL_DEPTH, SUN_PATH, SockAddrOffsets, UnixKey,
};
use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};

use crate::{
    kernel::{ancestor_below, any_profile, read_at},
    maps::{CONFIG, PROFILES, UNIX_ALLOW},
    observe::{fill_unix, start},
};

const ALLOW: i32 = 1;
const DENY: i32 = 0;
const EPERM: i32 = 1;

#[unsafe(no_mangle)]
pub(crate) static CORDON_UNIX_OFFSETS: SockAddrOffsets = SockAddrOffsets::UNSET;

/// Reads one offset. Volatile, or LLVM would fold the placeholder value.
macro_rules! uoff {
    ($field:ident) => {
        // SAFETY: a plain read of an immutable global.
        unsafe { read_volatile(addr_of!(CORDON_UNIX_OFFSETS.$field)) as usize }
    };
}

#[cgroup_sock_addr(connect4)]
pub fn cordon_uds_connect(ctx: SockAddrContext) -> i32 {
    unix_hook(&ctx)
}

/// Runs only for datagrams with an explicit address: a connected socket's
/// peer was checked at connect.
#[cgroup_sock_addr(sendmsg4)]
pub fn cordon_uds_sendmsg(ctx: SockAddrContext) -> i32 {
    unix_hook(&ctx)
}

#[inline(always)]
fn unix_hook(ctx: &SockAddrContext) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    let parent_level = cfg.parent_level;
    if crate::current_killed(parent_level) {
        return DENY;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    if unsafe { (*ctx.sock_addr).user_family } != AF_UNIX as u32 {
        return ALLOW; // not a unix hook run: not ours to judge
    }
    if !any_profile(parent_level) {
        return ALLOW;
    }
    // The context is really a `struct bpf_sock_addr_kern`; its `uaddr` is
    // the kernel's copy of the caller's sockaddr (a sockaddr_storage, so
    // reading all of sun_path stays in bounds).
    let kctx = ctx.sock_addr as *const u8;
    let (Some(uaddr), Some(uaddrlen)) = (
        read_at::<u64>(kctx, uoff!(uaddr)),
        read_at::<u32>(kctx, uoff!(uaddrlen)),
    ) else {
        return DENY;
    };
    if uaddrlen < 2 {
        return ALLOW; // the kernel refuses it itself
    }
    let len = if uaddrlen - 2 > SUN_PATH as u32 {
        SUN_PATH
    } else {
        (uaddrlen - 2) as usize
    };
    let Some(sun) = read_at::<[u8; SUN_PATH]>(uaddr as *const u8, 2) else {
        return DENY;
    };
    let mut key = UnixKey {
        cgroup_id: 0,
        path: [0; SUN_PATH],
        _pad: [0; 4],
    };
    let verdict = decide(&sun, len, parent_level, &mut key);
    if verdict == DENY {
        refused(&key, len);
    }
    verdict
}

/// The allow-list decision, shared with the LSM `socket_connect` and
/// `socket_sendmsg` programs so both layers judge alike. `sun` is
/// `sun_path` as the caller passed it, `len` its length (address length
/// minus the family). Abstract and unnamed addresses are allowed (Landlock
/// scopes abstract ones); a pathname needs an exact entry for every
/// profiled ancestor level; a relative one is denied, since it resolves
/// against a cwd we cannot see. `key.path` is left holding the path
/// zero-padded, for the caller's event.
#[inline(always)]
pub(crate) fn decide(
    sun: &[u8; SUN_PATH],
    len: usize,
    parent_level: u32,
    key: &mut UnixKey,
) -> i32 {
    if len == 0 {
        return ALLOW; // unnamed (autobind)
    }
    if sun[0] == 0 {
        return ALLOW; // abstract
    }
    // The kernel reads a pathname up to its first NUL or `len`.
    let mut cut = false;
    let mut j = 0;
    while j < SUN_PATH {
        if j >= len || sun[j] == 0 {
            cut = true;
        }
        key.path[j] = if cut { 0 } else { sun[j] };
        j += 1;
    }
    if sun[0] != b'/' {
        return DENY;
    }
    let mut i = 1;
    while i <= MAX_KILL_DEPTH {
        let id = ancestor_below(parent_level, i);
        if id == 0 {
            break;
        }
        // SAFETY: read-only lookups of plain values.
        if unsafe { PROFILES.get(&id) }.is_some() {
            key.cgroup_id = id;
            if unsafe { UNIX_ALLOW.get(&*key) }.is_none() {
                return DENY;
            }
        }
        i += 1;
    }
    ALLOW
}

/// Reports a refusal in the observers' format, so the daemon's reader
/// decodes it like theirs. A full ring buffer is counted by `start`.
#[inline(always)]
fn refused(key: &UnixKey, len: usize) {
    if let Some(mut e) = start(EVENT_UNIX_CONNECT, -EPERM) {
        fill_unix(e.as_mut_ptr(), &key.path, len as u16);
        e.submit(0);
    }
}
