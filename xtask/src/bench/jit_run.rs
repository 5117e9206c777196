//! The JIT-token scenario's runs (setup in `jit`): HTTPS keep-alive to the
//! same path through `cordon-jit`, as `bench-static` (a static vault token
//! injected) and as `bench-jit` (a minted GitHub App installation token
//! injected, a cache hit after each instance's first request), 1 and 64
//! connections, interleaved in every round. After each run the upstream's
//! per-token logs must show every successful request carrying that agent's
//! token and none the other's; otherwise the scenario stops and reports
//! the failure instead of figures.
use std::{path::Path, time::Duration};

use anyhow::bail;
use serde::Serialize;

use super::{
    cordon::Cordon,
    jit::{self, Logs},
    median,
    oha::{self, Load, Target},
    proc::Meter,
    rig::Rig,
};

#[derive(Serialize, Default)]
pub struct JitResult {
    /// Why the scenario has no figures: the daemon did not start, or a
    /// token check failed.
    pub missing: Option<String>,
    pub url: String,
    pub loads: Vec<JitLoad>,
}

#[derive(Serialize)]
pub struct JitLoad {
    pub connections: u32,
    pub load: String,
    pub static_runs: Vec<Run>,
    pub jit_runs: Vec<Run>,
    /// Medians over rounds.
    pub static_median: Option<Stats>,
    pub jit_median: Option<Stats>,
    /// Per round jit / static, median over rounds.
    pub ratio: Option<Stats>,
    pub errors: Vec<String>,
}

#[derive(Serialize, Clone, Copy)]
pub struct Run {
    pub round: u32,
    pub stats: Stats,
}

#[derive(Serialize, Clone, Copy)]
pub struct Stats {
    pub rps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The daemon's CPU over the run per successful request, in us.
    pub cpu_us_per_req: f64,
}

pub fn run(rig: &Rig, cordon: Result<&Cordon, &str>, rounds: u32, secs: u32) -> JitResult {
    let url = format!("https://localhost:{}{}", rig.upstream.https_jit, jit::PATH);
    let cordon = match cordon {
        Ok(c) => c,
        Err(why) => return missing(url, format!("the daemon did not start: {why}")),
    };
    let logs = Logs::at(&rig.upstream.dir);
    let mut loads: Vec<JitLoad> = [1, 64]
        .into_iter()
        .map(|connections| JitLoad {
            connections,
            load: format!("oha -z {secs}s -c {connections}"),
            static_runs: vec![],
            jit_runs: vec![],
            static_median: None,
            jit_median: None,
            ratio: None,
            errors: vec![],
        })
        .collect();
    // Unmeasured: the daemon's first leaf certificate and upstream
    // connections would otherwise fall on whichever agent runs first.
    let warm = Load {
        connections: 1,
        keepalive: true,
        h2_streams: None,
        secs: 1,
    };
    for agent in [jit::STATIC_AGENT, jit::JIT_AGENT] {
        if let Err(Check(e)) = run_one(rig, cordon, &logs, agent, &warm, &url) {
            return missing(url, format!("token check failed, no figures: {e:#}"));
        }
    }
    for round in 0..rounds {
        for (i, l) in loads.iter_mut().enumerate() {
            // Who goes first alternates, so neither always follows the other.
            let mut order = [jit::STATIC_AGENT, jit::JIT_AGENT];
            if (round as usize + i) % 2 == 1 {
                order.reverse();
            }
            for agent in order {
                eprintln!(
                    "xtask: bench: jit-token round {} {} -c {}",
                    round + 1,
                    agent,
                    l.connections
                );
                let load = Load {
                    connections: l.connections,
                    keepalive: true,
                    h2_streams: None,
                    secs,
                };
                match run_one(rig, cordon, &logs, agent, &load, &url) {
                    Ok(stats) => {
                        let runs = if agent == jit::JIT_AGENT {
                            &mut l.jit_runs
                        } else {
                            &mut l.static_runs
                        };
                        runs.push(Run { round, stats });
                    }
                    Err(Check(e)) => {
                        return missing(url, format!("token check failed, no figures: {e:#}"));
                    }
                    Err(Other(e)) => l.errors.push(format!("round {} {agent}: {e:#}", round + 1)),
                }
            }
        }
    }
    for l in loads.iter_mut() {
        summarize(l);
    }
    JitResult {
        missing: None,
        url,
        loads,
    }
}

/// A result without figures, saying why.
fn missing(url: String, why: String) -> JitResult {
    eprintln!("xtask: bench: jit-token: {why}");
    JitResult {
        missing: Some(why),
        url,
        loads: vec![],
    }
}

/// A run's failure: a token check (the scenario stops) or anything else.
enum Failure {
    Check(anyhow::Error),
    Other(anyhow::Error),
}
use Failure::{Check, Other};

fn lines(p: &Path) -> u64 {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64)
}

fn run_one(
    rig: &Rig,
    cordon: &Cordon,
    logs: &Logs,
    agent: &str,
    load: &Load,
    url: &str,
) -> Result<Stats, Failure> {
    let count =
        || [&logs.static_token, &logs.minted_token, &logs.mints].map(|p| lines(p.as_path()));
    let before = count();
    let ca = cordon.agent_ca();
    let target = Target {
        url,
        proxy: None,
        ca: Some(&ca),
        connect_to: None,
    };
    let mut cmd = cordon.run_as(agent, &rig.oha);
    cmd.args(oha::args(load, &target));
    let meter = Meter::start(cordon.pid());
    let result = oha::run_json(&mut cmd);
    let usage = meter.finish();
    // nginx flushes its buffered access logs every second.
    std::thread::sleep(Duration::from_millis(1500));
    let after = count();
    let (f, v) = result.map_err(Other)?;
    let [st, mt, mints] = [0, 1, 2].map(|i| after[i] - before[i]);
    let jit = agent == jit::JIT_AGENT;
    let (own, other) = if jit { (mt, st) } else { (st, mt) };
    let check = || -> anyhow::Result<()> {
        if f.failed > 0 {
            bail!(
                "{agent}: {} of {} requests failed (the upstream answers 401 without a bench token)",
                f.failed,
                f.failed + f.ok
            );
        }
        if own < f.ok || other > 0 {
            bail!(
                "{agent}: {} requests succeeded; the upstream logged {own} with this agent's token and {other} with the other's",
                f.ok
            );
        }
        match (jit, mints) {
            (true, 0) => bail!("{agent}: the upstream saw no token mint"),
            (false, n) if n > 0 => bail!("{agent}: the upstream saw {n} token mints"),
            _ => Ok(()),
        }
    };
    check().map_err(Check)?;
    let mean = v
        .pointer("/summary/average")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN);
    Ok(Stats {
        rps: f.rps,
        mean_ms: mean * 1e3,
        p50_ms: f.p50_ms,
        p99_ms: f.p99_ms,
        cpu_us_per_req: usage.cpu_secs / f.ok as f64 * 1e6,
    })
}

fn summarize(l: &mut JitLoad) {
    let med = |runs: &[Run]| -> Option<Stats> {
        let m = |f: fn(&Stats) -> f64| median(runs.iter().map(|r| f(&r.stats)).collect());
        (!runs.is_empty()).then(|| Stats {
            rps: m(|s| s.rps),
            mean_ms: m(|s| s.mean_ms),
            p50_ms: m(|s| s.p50_ms),
            p99_ms: m(|s| s.p99_ms),
            cpu_us_per_req: m(|s| s.cpu_us_per_req),
        })
    };
    l.static_median = med(&l.static_runs);
    l.jit_median = med(&l.jit_runs);
    let pairs: Vec<(Stats, Stats)> = l
        .jit_runs
        .iter()
        .filter_map(|j| {
            let s = l.static_runs.iter().find(|s| s.round == j.round)?;
            Some((j.stats, s.stats))
        })
        .collect();
    let r = |f: fn(&Stats) -> f64| median(pairs.iter().map(|(j, s)| f(j) / f(s)).collect());
    l.ratio = (!pairs.is_empty()).then(|| Stats {
        rps: r(|s| s.rps),
        mean_ms: r(|s| s.mean_ms),
        p50_ms: r(|s| s.p50_ms),
        p99_ms: r(|s| s.p99_ms),
        cpu_us_per_req: r(|s| s.cpu_us_per_req),
    });
}
