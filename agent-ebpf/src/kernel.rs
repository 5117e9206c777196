//! Reading kernel structures the containment programs are handed.
//!
//! Field offsets are never hard-coded: the daemon takes them from the
//! running kernel's BTF and overrides `CORDON_KOFFSETS` (in .rodata, frozen)
//! at load time, so the verifier sees each one as a known constant.
use core::ptr::{addr_of, read_volatile};

use agent_common::{KernelOffsets, MAX_KILL_DEPTH};
use aya_ebpf::{
    bindings::path,
    cty::c_char,
    helpers::{
        bpf_d_path, bpf_get_current_ancestor_cgroup_id, bpf_probe_read_kernel,
        generated::bpf_probe_read_kernel as probe_read_raw,
    },
};

use crate::maps::{PROFILES, SCRATCH, SCRATCH_PATH};

#[unsafe(no_mangle)]
pub(crate) static CORDON_KOFFSETS: KernelOffsets = KernelOffsets::UNSET;

/// Reads one offset. Volatile, or LLVM would fold the placeholder value.
macro_rules! koff {
    ($field:ident) => {
        // SAFETY: a plain read of an immutable global.
        unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!($crate::kernel::CORDON_KOFFSETS.$field))
                as usize
        }
    };
}
pub(crate) use koff;

pub const ENAMETOOLONG: i64 = 36;

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub fn read_at<T>(base: *const u8, off: usize) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel tolerates any address.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off).cast::<T>()) }.ok()
}

/// Copies `len` bytes of kernel memory (the helper is the only memcpy the
/// verifier accepts between these buffers). False if the read failed.
#[inline(always)]
pub fn copy_kernel(dst: *mut u8, len: u32, src: *const u8) -> bool {
    // SAFETY: the caller passes a destination of at least `len` bytes.
    unsafe { probe_read_raw(dst.cast(), len, src.cast()) == 0 }
}

/// The cgroup id of the current task's ancestor `i` levels below the
/// Cordon parent, or 0 past the task's own cgroup.
#[inline(always)]
pub fn ancestor_below(parent_level: u32, i: u32) -> u64 {
    // SAFETY: BPF helper without memory arguments.
    unsafe { bpf_get_current_ancestor_cgroup_id((parent_level + i) as i32) }
}

/// Does any ancestor of the current task below the parent have a profile?
/// The common case (an agent without containment) stops here.
#[inline(always)]
pub fn any_profile(parent_level: u32) -> bool {
    let mut i = 1;
    while i <= MAX_KILL_DEPTH {
        let id = ancestor_below(parent_level, i);
        if id == 0 {
            return false;
        }
        // SAFETY: read-only lookup of a plain u32.
        if unsafe { PROFILES.get(&id) }.is_some() {
            return true;
        }
        i += 1;
    }
    false
}

/// `&file->f_path` as the BTF-typed pointer bpf_d_path requires.
#[inline(always)]
pub fn file_path(file: *const u8) -> *const path {
    file.wrapping_add(koff!(file_f_path)).cast()
}

/// d_path into `dst` (`cap` bytes). Returns the length with its NUL.
#[inline(always)]
pub fn d_path(p: *const path, dst: *mut u8, cap: u32) -> i64 {
    // SAFETY: `dst` has `cap` writable bytes; the hook allows bpf_d_path.
    unsafe { bpf_d_path(p, dst.cast::<c_char>(), cap) }
}

/// For a path longer than the caller's buffer: resolves it whole in the
/// per-CPU scratch and copies its first `cap` bytes to `dst`. Returns the
/// full length, or 0 when the path cannot be had (too long even for
/// PATH_MAX, or the scratch was reused under us twice).
#[inline(always)]
pub fn d_path_prefix(p: *const path, dst: *mut u8, cap: u32) -> i64 {
    let Some(s) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    let mut attempt = 0;
    while attempt < 2 {
        // SAFETY: `s` is this CPU's scratch value; see PathScratch for why
        // the sequence number makes sharing it with a preempting run safe.
        unsafe {
            let my = read_volatile(addr_of!((*s).seq)).wrapping_add(1);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*s).seq), my);
            let n = d_path(p, (*s).buf.as_mut_ptr(), SCRATCH_PATH as u32);
            if n <= 0 {
                return 0;
            }
            if !copy_kernel(dst, cap, (*s).buf.as_ptr()) {
                return 0;
            }
            if read_volatile(addr_of!((*s).seq)) == my {
                return n;
            }
        }
        attempt += 1;
    }
    0
}
