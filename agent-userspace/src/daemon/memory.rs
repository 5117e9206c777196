//! Keeping the daemon's resident memory near what it uses, and its allocator fast.
//!
//! Rust allocations go to mimalloc (`main.rs`): per-thread heaps without the arena locks
//! glibc takes when the runtime threads and the audit writer allocate at once. In the
//! keep-alive bench that cut the daemon's CPU per request by about a fifth. By default
//! mimalloc (v3) keeps freed pages for a second before it hands them back, and a thread that goes
//! quiet never gets back to it, so after a burst the daemon stayed ~4 MiB larger than with
//! glibc; purging at once costs nothing measurable and keeps it level.
//!
//! What C code allocates (aws-lc's key schedules) still comes from glibc, whose arenas
//! are capped and trimmed as before: glibc gives each contending thread its own arena and
//! keeps freed memory in it (the daemon stayed 3-5x its idle size before the trim).
use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(10);

/// `mi_option_purge_delay` in mimalloc's `mi_option_e`. The crate does not export it;
/// mimalloc keeps the enum's numbering stable (retired options stay as placeholders), and
/// a test checks the slot still holds this option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call before any thread is started.
pub fn tune_allocators() {
    // SAFETY: mallopt only sets an allocator tunable; mi_option_set is not thread safe,
    // which is why this runs before the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
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
