//! Processes the bench starts, and what they cost. A [`Guard`] stops its
//! process on drop (SIGTERM, a bounded wait, then SIGKILL), so nothing
//! outlives the bench even when a scenario fails half way. CPU and memory
//! come from /proc: utime+stime ticks and VmRSS/VmHWM, summed over the
//! process and its descendants (Squid's helpers, nginx's workers).
use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context;

pub struct Guard {
    pub name: String,
    child: Option<Child>,
    /// Run after the process is gone (e.g. `cordon cleanup`).
    after: Option<Box<dyn FnOnce()>>,
}

impl Guard {
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            after: None,
        })
    }

    pub fn on_stop(mut self, f: impl FnOnce() + 'static) -> Self {
        self.after = Some(Box::new(f));
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits at most `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signalling our own child, which is not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        eprintln!("xtask: bench: {} ignored SIGTERM; killing", self.name);
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if let Some(f) = self.after.take() {
            f();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A command with stdio quiet (logs go to files the caller chooses).
pub fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null())
}

pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The pid and all its descendants, from /proc/*/stat.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Fields of /proc/PID/stat after the command name (state is field 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime+stime of these processes, in clock ticks.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            let get = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            // utime and stime are fields 14 and 15 of stat, 11 and 12 here.
            get(11) + get(12)
        })
        .sum()
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| status_kib(*p, "VmRSS")).sum()
}

/// CPU and peak RSS of a process tree over a window.
pub struct Meter {
    pids: Vec<u32>,
    ticks0: u64,
    t0: Instant,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Usage {
    /// CPU seconds used per wall second.
    pub cores: f64,
    /// CPU seconds used over the window.
    pub cpu_secs: f64,
    pub peak_rss_mib: f64,
}

impl Meter {
    pub fn start(root: u32) -> Self {
        let pids = tree(root);
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(&pids)));
        let sampler = {
            let (pids, stop, peak) = (pids.clone(), stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(&pids), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            ticks0: cpu_ticks(&pids),
            pids,
            t0: Instant::now(),
            stop,
            peak,
            sampler: Some(sampler),
        }
    }

    pub fn finish(mut self) -> Usage {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-6);
        let ticks = cpu_ticks(&self.pids).saturating_sub(self.ticks0);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
        self.peak.fetch_max(rss_kib(&self.pids), Ordering::Relaxed);
        let cpu_secs = ticks as f64 / clk_tck();
        Usage {
            cores: cpu_secs / secs,
            cpu_secs,
            peak_rss_mib: self.peak.load(Ordering::Relaxed) as f64 / 1024.0,
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
