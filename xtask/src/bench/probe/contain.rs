//! The host-containment loops: open()+close() of one file, and fork+exec
//! of a program waited for. Each is timed inside the probe, so neither the
//! probe's own start-up nor `cordon run`'s launch is counted: only what
//! Landlock and the BPF LSM add to each system call. The first failure
//! ends the loop with an error: a refused open is cheaper than a granted
//! one and would flatter the figure.
use std::{
    ffi::CString,
    time::{Duration, Instant},
};

use super::{Res, parse};

/// Timings of one loop, in nanoseconds per iteration.
struct Timings {
    lat: Vec<u64>,
    secs: f64,
}

impl Timings {
    fn print(mut self) {
        let ops = self.lat.len();
        self.lat.sort_unstable();
        let pct = |p: f64| {
            self.lat
                .get(((ops as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{{\"ops\":{ops},\"secs\":{:.4},\"ns_per_op\":{:.1},\"p50_ns\":{},\"p99_ns\":{}}}",
            self.secs,
            self.secs * 1e9 / (ops.max(1) as f64),
            pct(0.5),
            pct(0.99)
        );
    }
}

/// Runs `step` N times or until MAX_SECS, timing each call. One clock
/// read per iteration: the end of one is the start of the next.
fn timed(n: &str, max_secs: &str, mut step: impl FnMut() -> Res) -> Result<Timings, String> {
    let n: usize = parse("N", n)?;
    let max = Duration::from_secs(parse("MAX_SECS", max_secs)?);
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    let mut t0 = started;
    for _ in 0..n {
        step()?;
        let t1 = Instant::now();
        lat.push((t1 - t0).as_nanos() as u64);
        t0 = t1;
        if t1 - started > max {
            break;
        }
    }
    Ok(Timings {
        lat,
        secs: started.elapsed().as_secs_f64(),
    })
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// N times: open(PATH, O_RDONLY) and close it.
pub fn open_loop(path: &str, n: &str, max_secs: &str) -> Res {
    let c = CString::new(path).map_err(|_| format!("bad PATH: {path:?}"))?;
    let t = timed(n, max_secs, || {
        // SAFETY: a NUL-terminated path; the descriptor is ours to close.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open {path}: {}", errno()));
        }
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
        Ok(())
    })?;
    t.print();
    Ok(())
}

/// N times: fork, exec PROGRAM (no arguments, empty environment) in the
/// child, wait for it; it must exit 0.
pub fn spawn_loop(program: &str, n: &str, max_secs: &str) -> Res {
    let prog = CString::new(program).map_err(|_| format!("bad PROGRAM: {program:?}"))?;
    // Built before the loop: the child only calls execve and _exit, which
    // are async-signal-safe.
    let argv = [prog.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let t = timed(n, max_secs, || {
        // SAFETY: the probe is single-threaded; the child execs or exits.
        match unsafe { libc::fork() } {
            -1 => Err(format!("fork: {}", errno())),
            // SAFETY: in the child: only execve and _exit.
            0 => unsafe {
                libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127)
            },
            pid => {
                let mut status = 0;
                // SAFETY: waiting for the child just forked.
                if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                    return Err(format!("waitpid: {}", errno()));
                }
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    Ok(())
                } else {
                    Err(format!("{program} ended with status {status:#x}"))
                }
            }
        }
    })?;
    t.print();
    Ok(())
}
