//! Keeping the daemon's resident memory near what it uses, and its allocator fast.
//!
//! Rust allocations go to mimalloc (`main.rs`): per-thread heaps without the arena locks
//! glibc takes when the runtime threads and the audit writer allocate at once. In the
//! keep-alive bench that cut the daemon's CPU per request by about a fifth. Two things keep
//! its memory level after a burst (a full bench with only the first ended at 67 MiB after
//! the 10,000-connection scenario, where glibc ended at 31 MiB):
//! - freed pages are purged after 10 ms, not after mimalloc v3's default second. Not at
//!   once (0), which this used to be: every request's larger buffers were then handed back
//!   and faulted in again, and each hand-back (`madvise`) interrupted the other core to
//!   flush its TLB; 10 ms cut the daemon's CPU per keep-alive request by a tenth. Idle
//!   threads still purge everything when they collect (`collect_on_park`, forced);
//! - a connection's task often ends on another worker than the one that allocated its
//!   buffers, and such frees only become reusable, or returnable, once the owning thread
//!   collects them; each runtime thread does so when it goes idle (`collect_on_park`).
//!
//! What C code allocates (aws-lc's key schedules) still comes from glibc, whose arenas
//! are capped and trimmed as before: glibc gives each contending thread its own arena and
//! keeps freed memory in it (the daemon stayed 3-5x its idle size before the trim).
use std::cell::Cell;
use std::time::{Duration, Instant};

const TRIM_EVERY: Duration = Duration::from_secs(10);

/// `mi_option_purge_delay` in mimalloc's `mi_option_e`. The crate does not export it;
/// mimalloc keeps the enum's numbering stable (retired options stay as placeholders), and
/// a test checks the slot still holds this option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay committed before mimalloc hands them back.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Call before any thread is started.
pub fn tune_allocators() {
    // SAFETY: mallopt only sets an allocator tunable; mi_option_set is not thread safe,
    // which is why this runs before the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// How often a runtime thread going idle hands its freed pages back, at most.
const COLLECT_EVERY: Duration = Duration::from_millis(200);

thread_local! {
    static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// For `on_thread_park`: a runtime thread with nothing to do collects what other threads
/// freed into its heap (a connection's task often ends on another worker than the one that
/// allocated it) so empty pages go back to the kernel.
pub fn collect_on_park() {
    LAST_COLLECT.with(|last| {
        let now = Instant::now();
        if last
            .get()
            .is_some_and(|t| now.duration_since(t) < COLLECT_EVERY)
        {
            return;
        }
        last.set(Some(now));
        // SAFETY: collects the calling thread's own heap.
        unsafe { libmimalloc_sys::mi_collect(true) };
    });
}

/// Returns freed glibc heap pages to the kernel every few seconds. A trim walks the
/// free lists (well under a millisecond at these sizes), so it runs off the
/// runtime threads.
pub async fn trim_loop() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // SAFETY: malloc_trim has no preconditions.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_slot_holds_mimallocs_default_of_one_second() {
        // SAFETY: reads an option; nothing in this test binary sets it.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            value, 1000,
            "mimalloc renumbered its options: fix MI_OPTION_PURGE_DELAY"
        );
    }
}
