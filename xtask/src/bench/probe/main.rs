//! `bench-probe`: the small programs `cargo xtask bench` needs on both
//! sides of an agent cgroup. Std only, every loop bounded by a count and a
//! deadline, results as one JSON line on stdout.
//!
//! ```text
//! bench-probe listen ADDR close|hold COUNT_FILE MAX_SECS
//! bench-probe connect-loop ADDR N MAX_SECS
//! bench-probe hold ADDR N HOLD_SECS
//! bench-probe open-loop PATH N MAX_SECS
//! bench-probe spawn-loop PROGRAM N MAX_SECS
//! ```
mod contain;
#[path = "../rlimit.rs"]
mod rlimit;

use rlimit::raise_nofile;
use std::{
    io::Write,
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

/// The most connections `hold` and `listen hold` keep open.
const MAX_HELD: usize = 20_000;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("listen") if args.len() == 5 => listen(&args[1], &args[2], &args[3], &args[4]),
        Some("connect-loop") if args.len() == 4 => connect_loop(&args[1], &args[2], &args[3]),
        Some("hold") if args.len() == 4 => hold(&args[1], &args[2], &args[3]),
        Some("open-loop") if args.len() == 4 => contain::open_loop(&args[1], &args[2], &args[3]),
        Some("spawn-loop") if args.len() == 4 => contain::spawn_loop(&args[1], &args[2], &args[3]),
        _ => Err("usage: bench-probe listen ADDR close|hold COUNT_FILE MAX_SECS | connect-loop ADDR N MAX_SECS | hold ADDR N HOLD_SECS | open-loop PATH N MAX_SECS | spawn-loop PROGRAM N MAX_SECS".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-probe: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Res = Result<(), String>;

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad {what}: {s:?}"))
}

/// Accepts until MAX_SECS have passed. `close` drops each connection at
/// once (the far end of a connect+close loop); `hold` keeps them (idle
/// connections through the proxy). The accepted count goes to COUNT_FILE
/// so the caller can wait for it; the bound address goes to stdout.
fn listen(addr: &str, mode: &str, count_file: &str, max_secs: &str) -> Res {
    let hold = match mode {
        "close" => false,
        "hold" => true,
        _ => return Err(format!("bad mode {mode:?}: close or hold")),
    };
    raise_nofile(MAX_HELD as u64 + 1_000);
    let max = Duration::from_secs(parse("MAX_SECS", max_secs)?);
    let addr: SocketAddr = parse("ADDR", addr)?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    // Large enough that a burst of connects is not dropped by the kernel.
    // SAFETY: listen on a socket we own.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{local}");
    let _ = std::io::stdout().flush();
    let started = Instant::now();
    let mut held = Vec::new();
    let mut accepted: u64 = 0;
    let mut written = u64::MAX;
    while started.elapsed() < max {
        match listener.accept() {
            Ok((s, _)) => {
                accepted += 1;
                if hold && held.len() < MAX_HELD {
                    held.push(s);
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {}
        }
        if written != accepted {
            let _ = std::fs::write(count_file, accepted.to_string());
            written = accepted;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// N times: connect(), then close with a RST (no TIME_WAIT, so the loop
/// never runs out of ports). Reports the rate and connect() latency.
fn connect_loop(addr: &str, n: &str, max_secs: &str) -> Res {
    let addr: SocketAddr = parse("ADDR", addr)?;
    let n: usize = parse("N", n)?;
    let max = Duration::from_secs(parse("MAX_SECS", max_secs)?);
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0u64;
    let started = Instant::now();
    for _ in 0..n {
        if started.elapsed() > max {
            break;
        }
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => {
                lat.push(t0.elapsed().as_nanos() as u64);
                reset_on_close(&s);
            }
            Err(_) => errors += 1,
        }
        if errors > (n as u64 / 10).max(10) {
            return Err(format!("{errors} connects to {addr} failed"));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let done = lat.len();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((done as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1e3
    };
    let max_us = lat.last().copied().unwrap_or(0) as f64 / 1e3;
    let slow = lat.iter().filter(|&&l| l > 10_000_000).count();
    let in_connect = lat.iter().sum::<u64>() as f64 / 1e9;
    println!(
        "{{\"max_us\":{max_us:.1},\"slow_over_10ms\":{slow},\"secs_in_connect\":{in_connect:.4},\"connects\":{done},\"errors\":{errors},\"secs\":{secs:.4},\"per_sec\":{:.1},\"p50_us\":{:.2},\"p99_us\":{:.2}}}",
        done as f64 / secs.max(1e-9),
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}

/// Opens N connections, reports, then keeps them open for HOLD_SECS.
fn hold(addr: &str, n: &str, hold_secs: &str) -> Res {
    let addr: SocketAddr = parse("ADDR", addr)?;
    let n: usize = parse("N", n)?;
    let n = n.min(MAX_HELD);
    let hold_for = Duration::from_secs(parse("HOLD_SECS", hold_secs)?);
    raise_nofile(n as u64 + 1_000);
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut errors = 0u64;
    for _ in 0..n {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(20)) {
            Ok(s) => held.push(s),
            Err(_) => errors += 1,
        }
        if errors > 100 {
            break;
        }
    }
    println!(
        "{{\"opened\":{},\"errors\":{errors},\"secs\":{:.3}}}",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    std::thread::sleep(hold_for);
    Ok(())
}

fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own with a correctly sized value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
