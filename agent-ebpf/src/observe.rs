//! Observers: fexit on the stable `security_*` entry points, so every
//! refusal by any LSM (Landlock's or ours) inside the Cordon parent reaches
//! the daemon's audit trail through the `EVENTS` ring buffer.
//!
//! They are global (tracing programs cannot be scoped to a cgroup), so each
//! first checks, cheaply, the return value and that the task is under the
//! Cordon parent.
use core::ptr::{addr_of_mut, write_volatile};

use agent_common::{
    ADDR_ABSTRACT, ADDR_PATHNAME, ADDR_UNKNOWN, ADDR_UNNAMED, AF_UNIX, ContainRawEvent, EVENT_DATA,
    EVENT_FILE_OPEN, EVENT_PTRACE, EVENT_SIGNAL, EVENT_UNIX_CONNECT, SUN_PATH,
};
use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    macros::fexit,
    maps::ring_buf::RingBufEntry,
    programs::FExitContext,
};

use crate::{
    kernel::{
        ENAMETOOLONG, ancestor_below, copy_kernel, d_path, d_path_prefix, file_path, koff, read_at,
    },
    maps::{CONFIG, EVENTS, LOST, UNIX_STASH, UnixStash},
};

/// Is the current task inside the Cordon parent cgroup?
#[inline(always)]
fn in_cordon() -> bool {
    let Some(cfg) = CONFIG.get(0) else {
        return false;
    };
    cfg.parent_id != 0 && ancestor_below(cfg.parent_level, 0) == cfg.parent_id
}

/// Reserves an event and fills the fields every kind has. A full ring
/// buffer is counted, never silent.
#[inline(always)]
pub(crate) fn start(kind: u32, ret: i32) -> Option<RingBufEntry<ContainRawEvent>> {
    let Some(mut e) = EVENTS.reserve::<ContainRawEvent>(0) else {
        if let Some(lost) = LOST.get_ptr_mut(0) {
            // SAFETY: this CPU's counter; per-CPU, so no other writer.
            unsafe { *lost += 1 };
        }
        return None;
    };
    // SAFETY: BPF helpers without memory arguments.
    let (cgroup_id, pid_tgid, uid_gid) = unsafe {
        (
            bpf_get_current_cgroup_id(),
            bpf_get_current_pid_tgid(),
            bpf_get_current_uid_gid(),
        )
    };
    let ev = e.as_mut_ptr();
    // SAFETY: `ev` points at the reserved, writable record. Fields are
    // written one by one: the 512-byte data is only filled as needed.
    unsafe {
        write_volatile(addr_of_mut!((*ev).cgroup_id), cgroup_id);
        write_volatile(addr_of_mut!((*ev).kind), kind);
        write_volatile(addr_of_mut!((*ev).ret), ret);
        write_volatile(addr_of_mut!((*ev).pid), (pid_tgid >> 32) as u32);
        write_volatile(addr_of_mut!((*ev).tid), pid_tgid as u32);
        write_volatile(addr_of_mut!((*ev).uid), uid_gid as u32);
        write_volatile(addr_of_mut!((*ev).arg), 0);
        write_volatile(addr_of_mut!((*ev).target_pid), 0);
        write_volatile(addr_of_mut!((*ev).addr_kind), ADDR_UNKNOWN);
        write_volatile(addr_of_mut!((*ev).truncated), 0);
        write_volatile(addr_of_mut!((*ev).data_len), 0);
    }
    Some(e)
}

#[fexit(function = "security_file_open")]
pub fn cordon_obs_file_open(ctx: FExitContext) -> i32 {
    let ret: i32 = ctx.arg(1);
    if ret == 0 || !in_cordon() {
        return 0;
    }
    let file: *const u8 = ctx.arg(0);
    let Some(mut e) = start(EVENT_FILE_OPEN, ret) else {
        return 0;
    };
    let ev = e.as_mut_ptr();
    let p = file_path(file);
    let flags = read_at::<u32>(file, koff!(file_f_flags)).unwrap_or(0);
    // SAFETY: `ev` is the reserved record; data has EVENT_DATA bytes.
    unsafe {
        write_volatile(addr_of_mut!((*ev).arg), flags);
        let data = addr_of_mut!((*ev).data).cast::<u8>();
        let mut n = d_path(p, data, EVENT_DATA as u32);
        if n == -ENAMETOOLONG {
            n = d_path_prefix(p, data, EVENT_DATA as u32);
            write_volatile(addr_of_mut!((*ev).truncated), 1);
            if n > 0 {
                n = EVENT_DATA as i64;
            }
        }
        let len = if n > 0 { n as u16 } else { 0 };
        write_volatile(addr_of_mut!((*ev).data_len), len);
    }
    e.submit(0);
    0
}

/// Copies a family-stripped unix address into an event.
#[inline(always)]
pub(crate) fn fill_unix(ev: *mut ContainRawEvent, sun: &[u8; SUN_PATH], len: u16) {
    let kind = if len == 0 {
        ADDR_UNNAMED
    } else if sun[0] == 0 {
        ADDR_ABSTRACT
    } else {
        ADDR_PATHNAME
    };
    // SAFETY: `ev` is a reserved record; data is longer than sun_path.
    unsafe {
        write_volatile(addr_of_mut!((*ev).addr_kind), kind);
        write_volatile(addr_of_mut!((*ev).data_len), len);
        copy_kernel(
            addr_of_mut!((*ev).data).cast(),
            SUN_PATH as u32,
            sun.as_ptr(),
        );
    }
}

/// connect/sendmsg with an AF_UNIX address: report a refusal now, or
/// remember the address for the unix hook that runs next.
#[inline(always)]
fn unix_address(sock: *const u8, address: *const u8, addrlen: i32, ret: i32) {
    if address.is_null() || addrlen < 2 {
        return;
    }
    if read_at::<u16>(address, 0) != Some(AF_UNIX) || !in_cordon() {
        return;
    }
    let len = if addrlen - 2 > SUN_PATH as i32 {
        SUN_PATH as u16
    } else {
        (addrlen - 2) as u16
    };
    let Some(sun) = read_at::<[u8; SUN_PATH]>(address, 2) else {
        return;
    };
    if ret != 0 {
        if let Some(mut e) = start(EVENT_UNIX_CONNECT, ret) {
            fill_unix(e.as_mut_ptr(), &sun, len);
            e.submit(0);
        }
        return;
    }
    let stash = UnixStash {
        socket: sock as u64,
        sk: read_at::<u64>(sock, koff!(socket_sk)).unwrap_or(0),
        len,
        _pad: [0; 2],
        addr: sun,
    };
    let tid = bpf_get_current_pid_tgid();
    // Only for the audit record: a failed insert loses the name, never a
    // decision, and the refusal is still reported (address unknown).
    match UNIX_STASH.insert(&tid, &stash, 0) {
        Ok(()) | Err(_) => {}
    }
}

#[fexit(function = "security_socket_connect")]
pub fn cordon_obs_connect(ctx: FExitContext) -> i32 {
    unix_address(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3));
    0
}

#[fexit(function = "security_socket_sendmsg")]
pub fn cordon_obs_sendmsg(ctx: FExitContext) -> i32 {
    let sock: *const u8 = ctx.arg(0);
    let msg: *const u8 = ctx.arg(1);
    let ret: i32 = ctx.arg(3);
    if !in_cordon() {
        return 0;
    }
    let Some(name) = read_at::<u64>(msg, koff!(msghdr_msg_name)) else {
        return 0;
    };
    let namelen = read_at::<i32>(msg, koff!(msghdr_msg_namelen)).unwrap_or(0);
    unix_address(sock, name as *const u8, namelen, ret);
    0
}

/// A refusal in a unix hook: the address comes from the stash when it was
/// stashed for this very socket (`which` is the socket or its sock).
#[inline(always)]
fn unix_refused(which: u64, by_sk: bool, ret: i32) {
    let tid = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let stash = unsafe { UNIX_STASH.get(&tid) }.copied();
    let stash = stash.filter(|s| {
        if by_sk {
            s.sk == which
        } else {
            s.socket == which
        }
    });
    if stash.is_some() {
        // Either way the entry is gone (an LRU eviction may have won).
        match UNIX_STASH.remove(&tid) {
            Ok(()) | Err(_) => {}
        }
    }
    if ret == 0 {
        return;
    }
    let Some(mut e) = start(EVENT_UNIX_CONNECT, ret) else {
        return;
    };
    if let Some(s) = stash {
        fill_unix(e.as_mut_ptr(), &s.addr, s.len);
    }
    e.submit(0);
}

#[fexit(function = "security_unix_stream_connect")]
pub fn cordon_obs_unix_stream(ctx: FExitContext) -> i32 {
    if !in_cordon() {
        return 0;
    }
    let sk: u64 = ctx.arg(0);
    unix_refused(sk, true, ctx.arg(3));
    0
}

#[fexit(function = "security_unix_may_send")]
pub fn cordon_obs_unix_send(ctx: FExitContext) -> i32 {
    if !in_cordon() {
        return 0;
    }
    let sock: u64 = ctx.arg(0);
    unix_refused(sock, false, ctx.arg(2));
    0
}

#[fexit(function = "security_ptrace_access_check")]
pub fn cordon_obs_ptrace(ctx: FExitContext) -> i32 {
    let ret: i32 = ctx.arg(2);
    if ret == 0 || !in_cordon() {
        return 0;
    }
    let child: *const u8 = ctx.arg(0);
    let mode: u32 = ctx.arg(1);
    target_event(EVENT_PTRACE, ret, child, mode);
    0
}

#[fexit(function = "security_task_kill")]
pub fn cordon_obs_kill(ctx: FExitContext) -> i32 {
    let ret: i32 = ctx.arg(4);
    if ret == 0 || !in_cordon() {
        return 0;
    }
    let task: *const u8 = ctx.arg(0);
    let sig: i32 = ctx.arg(2);
    target_event(EVENT_SIGNAL, ret, task, sig as u32);
    0
}

#[inline(always)]
fn target_event(kind: u32, ret: i32, task: *const u8, arg: u32) {
    let Some(mut e) = start(kind, ret) else {
        return;
    };
    let tgid = read_at::<i32>(task, koff!(task_tgid)).unwrap_or(0);
    let ev = e.as_mut_ptr();
    // SAFETY: `ev` is the reserved record.
    unsafe {
        write_volatile(addr_of_mut!((*ev).arg), arg);
        write_volatile(addr_of_mut!((*ev).target_pid), tgid as u32);
    }
    e.submit(0);
}
