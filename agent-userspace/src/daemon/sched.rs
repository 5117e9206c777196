//! The scheduler slice the daemon's threads ask for.
//!
//! Every request an agent makes crosses the daemon several times (the handshake, the head,
//! the upstream's answer), and each crossing is a wakeup of one of its threads. On a host
//! whose CPUs are busy (a flooding agent, a build), a woken thread under EEVDF waits for the
//! running task to reach the end of its slice before it runs: about 1.4 ms on 2 CPUs, paid at
//! every crossing, and so by every other agent's requests too. Linux 6.12 lets a thread ask
//! for a shorter slice (`sched_attr.sched_runtime` with `SCHED_OTHER`): its deadlines come
//! sooner, so it preempts on wakeup, and it yields sooner when it runs long. The daemon's
//! work per wakeup is short, which is what short slices are for. The request is made once,
//! on the main thread before any other starts; threads inherit it.
//!
//! This changes latency, not enforcement: on a kernel that refuses it the daemon says so and
//! runs with the default slice.
use std::io;
use std::time::Duration;

/// `struct sched_attr` up to `sched_period` (`SCHED_ATTR_SIZE_VER0`); the kernel reads no
/// further for a size of 48.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Asks the scheduler to give the calling thread (and the threads it starts later) `slice`,
/// keeping `SCHED_OTHER` and its nice value.
pub fn ask_slice(slice: Duration) -> io::Result<()> {
    // SAFETY: getpriority has no memory arguments; errno is cleared first because -1 is
    // also a valid nice value.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    if nice == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(io::Error::last_os_error());
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a valid, initialised sched_attr of the size it declares; pid 0 is the
    // calling thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for `slice` if one is configured, and says what came of it.
pub fn apply(slice: Option<Duration>) {
    let Some(slice) = slice else {
        return;
    };
    match ask_slice(slice) {
        Ok(()) => tracing::info!(
            slice_us = slice.as_micros() as u64,
            "the daemon's threads run with a short scheduler slice"
        ),
        Err(e) => tracing::warn!(
            slice_us = slice.as_micros() as u64,
            error = %e,
            "the kernel refused a custom scheduler slice (it needs Linux 6.12); the daemon's \
             threads keep the default slice, so other agents' load adds more to its latency"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `se.slice` of the calling thread, in ns, as the kernel reports it.
    fn own_slice_ns() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    #[test]
    fn the_asked_slice_is_the_threads_and_its_childrens() {
        let (mine, child) = std::thread::spawn(|| {
            ask_slice(Duration::from_micros(300)).expect("sched_setattr");
            let child = std::thread::spawn(own_slice_ns)
                .join()
                .expect("child thread");
            (own_slice_ns(), child)
        })
        .join()
        .expect("thread");
        assert_eq!(mine, Some(300_000));
        assert_eq!(
            child,
            Some(300_000),
            "a thread started later inherits the slice"
        );
    }

    #[test]
    fn asking_for_a_slice_keeps_the_threads_nice_value() {
        let nice = std::thread::spawn(|| {
            // SAFETY: plain syscalls; PRIO_PROCESS with 0 is the calling thread on Linux.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 5) };
            ask_slice(Duration::from_micros(200)).expect("sched_setattr");
            // SAFETY: as above.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        })
        .join()
        .expect("thread");
        assert_eq!(nice, 5);
    }
}
