//! Taking an entry out of a hash map in one bpf(2) call
//! (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`, hash and LRU hash maps since Linux
//! 5.14): aya's `HashMap` has `get` and `remove`, two calls and a `&mut`
//! (so a lock) for every connection the proxy accepts. Taking it at once
//! also means no second connection can read a record the first is about to
//! delete.
use std::{
    io,
    mem::MaybeUninit,
    os::fd::{AsRawFd, BorrowedFd},
};

use aya::Pod;

const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;

/// The head of `union bpf_attr` the map element commands read.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The value under `key`, removed from the map; `None` when there is none.
pub fn take<K: Pod, V: Pod>(map: BorrowedFd<'_>, key: &K) -> io::Result<Option<V>> {
    let mut value = MaybeUninit::<V>::uninit();
    let attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key as *const K as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: `attr` points at a live key and at writable space for one
    // value of the map's value size (the caller's `V` is the map's value
    // type, as for aya's typed maps); the size passed is `attr`'s own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            &attr as *const ElemAttr,
            std::mem::size_of::<ElemAttr>(),
        )
    };
    if r == 0 {
        // SAFETY: the kernel wrote the value on success.
        return Ok(Some(unsafe { value.assume_init() }));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
        return Ok(None);
    }
    Err(e)
}
