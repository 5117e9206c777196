//! The daemon's audit write-ahead log sits in the page cache as page-sized
//! folios. ext4 (Linux 6.16 on) caches a file written or read in large
//! chunks in large folios, and every small append into one walks all of its
//! block buffers (twice the cost of a 500-byte `pwrite`); the daemon drops
//! the zero-filled file's pages and reads them back without readahead.
//!
//! The proof reads the kernel's own page flags: every page of the log,
//! mapped here, must be neither the head nor a tail of a compound page.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;

use cordon_e2e::world::ALLOWED_TEST_ONLY;
use cordon_e2e::{World, require_root_or_skip};

const PAGE: usize = 4096;
/// /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst).
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_COMPOUND_TAIL: u64 = 1 << 16;
const PAGEMAP_PRESENT: u64 = 1 << 63;
const PFN_MASK: u64 = (1 << 55) - 1;

fn read_u64(f: &mut File, index: u64) -> u64 {
    let mut b = [0u8; 8];
    f.seek(SeekFrom::Start(index * 8)).expect("seek");
    f.read_exact(&mut b).expect("read 8 bytes");
    u64::from_le_bytes(b)
}

/// How many of the file's pages are part of a large folio (and how many were looked at).
fn pages_in_large_folios(path: &std::path::Path) -> (usize, usize) {
    let file = File::open(path).expect("open the log");
    let len = usize::try_from(file.metadata().expect("stat").len()).expect("len");
    // SAFETY: a read-only shared mapping of a file this test keeps open; only read below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap the log");
    let mut pagemap = File::open("/proc/self/pagemap").expect("pagemap");
    let mut kflags = File::open("/proc/kpageflags").expect("kpageflags");
    let (mut large, mut seen) = (0, 0);
    for i in 0..len / PAGE {
        let addr = base as usize + i * PAGE;
        // SAFETY: inside the mapping; the read faults the cached page in.
        let _ = unsafe { std::ptr::read_volatile(addr as *const u8) };
        let entry = read_u64(&mut pagemap, (addr / PAGE) as u64);
        assert!(entry & PAGEMAP_PRESENT != 0, "page {i} not mapped");
        let pfn = entry & PFN_MASK;
        assert_ne!(pfn, 0, "page frame numbers are hidden (not root?)");
        let flags = read_u64(&mut kflags, pfn);
        seen += 1;
        if flags & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL) != 0 {
            large += 1;
        }
    }
    // SAFETY: the mapping made above, unmapped once.
    unsafe { libc::munmap(base, len) };
    (large, seen)
}

#[test]
fn the_audit_log_is_cached_in_page_sized_folios_for_cheap_appends() {
    require_root_or_skip!();
    let w = World::start(ALLOWED_TEST_ONLY).unwrap();
    let wal = w.daemon.state_dir().join("audit.wal");
    let (large, seen) = pages_in_large_folios(&wal);
    assert!(seen >= 1024, "looked at {seen} pages of {}", wal.display());
    assert_eq!(
        large, 0,
        "{large} of {seen} pages of the audit log are in large folios"
    );
}
