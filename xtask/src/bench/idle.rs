//! Scenario 11: the daemon's memory with idle agent connections. The probe
//! opens N connections from inside an agent cgroup to a probe listener that
//! holds them; each is a non-HTTP flow the proxy decides as a tcp.connect
//! (after its short first-byte wait) and splices to the listener. Once the
//! listener has them all, the daemon's VmRSS is read.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{
    connect::{accepted, listener},
    cordon::Cordon,
    proc::{Guard, status_kib},
};

#[derive(Serialize, Default, Clone)]
pub struct IdleLevel {
    pub connections: u64,
    /// Connections the probe opened and the listener received via Cordon.
    pub opened: u64,
    pub spliced: u64,
    pub secs_to_open: f64,
    pub rss_before_mib: f64,
    pub rss_held_mib: f64,
    pub rss_after_mib: f64,
    pub daemon_fds_held: u64,
}

#[derive(Serialize, Default)]
pub struct IdleResult {
    pub levels: Vec<IdleLevel>,
    pub errors: Vec<String>,
}

pub fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0
}

pub fn run(cordon: &Cordon, probe: &Path, dir: &Path, levels: &[u64]) -> IdleResult {
    let mut res = IdleResult::default();
    for &n in levels {
        eprintln!("xtask: bench: {n} idle agent connections");
        match level(cordon, probe, dir, n) {
            Ok(l) => res.levels.push(l),
            Err(e) => res.errors.push(format!("{n} connections: {e:#}")),
        }
    }
    res
}

fn level(cordon: &Cordon, probe: &Path, dir: &Path, n: u64) -> anyhow::Result<IdleLevel> {
    let pid = cordon.pid();
    let l = listener(probe, dir, "hold", 600)?;
    let mut out = IdleLevel {
        connections: n,
        rss_before_mib: rss_mib(pid),
        ..IdleLevel::default()
    };
    let t0 = Instant::now();
    let mut cmd = cordon.run_as(super::cordon::AGENT, probe);
    cmd.args(["hold", &l.addr, &n.to_string(), "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut holder = Guard::spawn("bench-probe hold", &mut cmd)?;
    let stdout = holder
        .child_mut()
        .and_then(|c| c.stdout.take())
        .context("probe has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .with_context(|| format!("unreadable probe output {line:?}"))?;
    out.opened = v
        .get("opened")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if out.opened == 0 {
        bail!("the probe opened no connection: {line}");
    }
    // Bounded: each flow waits for a first byte, then is decided and audited.
    let deadline = Instant::now() + Duration::from_secs(180);
    while accepted(&l) < out.opened && Instant::now() < deadline && holder.alive() {
        std::thread::sleep(Duration::from_millis(100));
    }
    out.spliced = accepted(&l);
    out.secs_to_open = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    out.rss_held_mib = rss_mib(pid);
    out.daemon_fds_held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    holder.stop();
    drop(l);
    std::thread::sleep(Duration::from_secs(2));
    out.rss_after_mib = rss_mib(pid);
    Ok(out)
}
