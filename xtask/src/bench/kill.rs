//! Scenario 10: the kill switch under load. An oha loop runs inside an
//! agent against the upstream's logged HTTPS port; `cordon kill` is timed
//! from start to return, and the upstream's access log says whether any
//! request arrived after it returned. nginx logs `$msec $request_time`, so
//! a request's arrival is `msec - request_time` (millisecond resolution).
use std::{
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

    let t0 = Instant::now();
    let wall_start = now_secs();
    let out = rig.cordon.cli(&["kill", &agent, "--reason", "bench"])?;
    let cli_us = t0.elapsed().as_secs_f64() * 1e6;
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

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
