//! Keeping the daemon's resident memory near what it uses. glibc gives each
//! thread that allocates under contention its own arena (up to 8 per core)
//! and keeps freed memory in them; after a burst of load the daemon stayed
//! 3-5x its idle size (bench: 18 MiB idle, ~100 MiB after the load
//! scenarios). Two arenas match the two runtime threads, and a periodic trim
//! hands freed pages back to the kernel.
use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Call before any thread is started.
pub fn limit_arenas() {
    // SAFETY: mallopt only sets an allocator tunable.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap pages to the kernel every few seconds. A trim walks the
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
