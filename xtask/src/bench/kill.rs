//! Scenario 10: the kill switch under load. An oha loop runs inside an
//! agent against the upstream's logged HTTPS port; `cordon kill` is timed
//! from its start to the moment the kernel reports the agent's cgroup
//! frozen (read by this process from `cgroup.events`, not taken from the
//! daemon) and to its return, and the upstream's access log says whether
//! any request arrived after it returned. nginx logs `$msec $request_time`,
//! so a request's arrival is `msec - request_time` (millisecond resolution).
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::{
    oha::{self, Load, Target},
    proc::Guard,
    rig::Rig,
};

#[derive(Serialize, Default, Clone)]
pub struct KillRound {
    pub agent: String,
    /// `cordon kill` from spawn to exit, as the operator sees it.
    pub cli_us: f64,
    /// From spawn to `frozen 1` in the agent cgroup's `cgroup.events`.
    pub frozen_us: Option<f64>,
    /// What the daemon reports (`killed in N us`).
    pub reported_us: Option<f64>,
    pub summary: String,
    /// Requests that reached the upstream in the 500 ms before the kill.
    pub arrived_500ms_before: u64,
    /// Requests whose arrival at the upstream is after `kill` returned.
    pub arrived_after: u64,
    /// Requests the upstream finished (logged) after `kill` returned.
    pub logged_after: u64,
}

#[derive(Serialize, Default)]
pub struct KillResult {
    pub rounds: Vec<KillRound>,
    pub errors: Vec<String>,
}

pub fn run(rig: &Rig, rounds: u32) -> KillResult {
    let mut res = KillResult::default();
    for k in 1..=rounds {
        eprintln!("xtask: bench: kill switch round {k}");
        match round(rig, k) {
            Ok(r) => res.rounds.push(r),
            Err(e) => res.errors.push(format!("round {k}: {e:#}")),
        }
    }
    res
}

fn round(rig: &Rig, k: u32) -> anyhow::Result<KillRound> {
    let agent = format!("bench-kill-{k}");
    let url = format!("https://localhost:{}/", rig.upstream.https_logged);
    let ca = rig.cordon.agent_ca();
    let load = Load {
        connections: 8,
        keepalive: true,
        h2_streams: None,
        secs: 60,
    };
    let mut cmd = rig.cordon.run_as(&agent, &rig.oha);
    cmd.args(oha::args(
        &load,
        &Target {
            url: &url,
            proxy: None,
            ca: Some(&ca),
            connect_to: None,
        },
    ))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut load_guard = Guard::spawn("oha (kill round)", &mut cmd)?;
    let log = &rig.upstream.kill_log;
    let lines = || {
        std::fs::read_to_string(log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let before = lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines() < before + 1000 && Instant::now() < deadline && load_guard.alive() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    let events = agent_cgroup(&agent)?.join("cgroup.events");
    let t0 = Instant::now();
    let watcher = {
        let events = events.clone();
        std::thread::spawn(move || watch_frozen(&events, t0))
    };
    let wall_start = now_secs();
    let out = rig.cordon.cli(&["kill", &agent, "--reason", "bench"])?;
    let cli_us = t0.elapsed().as_secs_f64() * 1e6;
    let frozen_us = watcher.join().ok().flatten();
    let returned = now_secs();
    let stdout = String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('\n', " / ");
    if !out.status.success() {
        anyhow::bail!(
            "cordon kill failed: {} {}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whatever was going to leak has had time to arrive.
    std::thread::sleep(Duration::from_secs(1));
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut r = KillRound {
        agent: agent.clone(),
        cli_us,
        frozen_us,
        reported_us: stdout
            .split("killed in ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok()),
        summary: stdout,
        ..KillRound::default()
    };
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let (Some(msec), Some(rt)) = (
            f.next().and_then(|x| x.parse::<f64>().ok()),
            f.next().and_then(|x| x.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let arrived = msec - rt;
        // nginx rounds to the millisecond: compare at that resolution.
        if arrived > returned + 0.0005 {
            r.arrived_after += 1;
        }
        if msec > returned + 0.0005 {
            r.logged_after += 1;
        }
        if arrived > wall_start - 0.5 && arrived <= wall_start {
            r.arrived_500ms_before += 1;
        }
    }
    let _ = rig.cordon.cli(&["terminate", &agent]);
    if load_guard.wait_exit(Duration::from_secs(5)).is_none() {
        load_guard.stop();
    }
    Ok(r)
}

/// Polls `cgroup.events` every 50 us until it says `frozen 1` (or 2 s
/// pass): the microseconds from `t0`.
fn watch_frozen(events: &Path, t0: Instant) -> Option<f64> {
    while t0.elapsed() < Duration::from_secs(2) {
        if std::fs::read_to_string(events).is_ok_and(|s| s.lines().any(|l| l == "frozen 1")) {
            return Some(t0.elapsed().as_secs_f64() * 1e6);
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    None
}

/// The agent's cgroup: `<cgroup2 mount>/cordon-*/<agent>`, the mount taken
/// from /proc/self/mountinfo.
fn agent_cgroup(agent: &str) -> anyhow::Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mount = info
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split_whitespace().next()? == "cgroup2").then(|| pre.split(' ').nth(4))?
        })
        .ok_or_else(|| anyhow::anyhow!("no cgroup2 mount in /proc/self/mountinfo"))?;
    for entry in std::fs::read_dir(mount)?.flatten() {
        let dir = entry.path().join(agent);
        if entry.file_name().to_string_lossy().starts_with("cordon-") && dir.is_dir() {
            return Ok(dir);
        }
    }
    anyhow::bail!("no cgroup for agent {agent} under {mount}/cordon-*")
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
