//! Scenario 7: the cost of the eBPF redirect on a bare TCP connect. The
//! probe runs a connect()+close (RST) loop against a local listener, once
//! outside any agent cgroup and once inside one (its connects are rewritten
//! to Cordon's proxy). Also the probe's listener helpers shared with the
//! idle-connection scenario.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{cordon::Cordon, median, proc::Guard};

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Loop {
    #[serde(default)]
    pub max_us: f64,
    /// connect() calls that took over 10 ms (a SYN dropped and retried).
    #[serde(default)]
    pub slow_over_10ms: u64,
    /// Time spent inside connect() out of `secs`.
    #[serde(default)]
    pub secs_in_connect: f64,
    pub connects: u64,
    pub errors: u64,
    pub secs: f64,
    pub per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

#[derive(Serialize, Default)]
pub struct ConnectResult {
    pub outside: Vec<Loop>,
    pub inside: Vec<Loop>,
    /// Medians over rounds.
    pub outside_median: Option<Loop>,
    pub inside_median: Option<Loop>,
    /// Median over rounds of inside p50 / outside p50 - 1 (the added share).
    pub added_p50: Option<f64>,
    /// Median over rounds of outside rate / inside rate - 1.
    pub added_per_connect: Option<f64>,
    pub errors: Vec<String>,
}

/// A probe listener; the address it bound is read from its first line.
pub struct Listener {
    pub addr: String,
    pub count_file: std::path::PathBuf,
    /// Holds the listener process for as long as the value lives.
    pub _guard: Guard,
}

pub fn listener(probe: &Path, dir: &Path, mode: &str, max_secs: u32) -> anyhow::Result<Listener> {
    let count_file = dir.join(format!("probe-{mode}.count"));
    let _ = std::fs::remove_file(&count_file);
    let mut cmd = Command::new(probe);
    cmd.args(["listen", "127.0.0.1:0", mode])
        .arg(&count_file)
        .arg(max_secs.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut guard = Guard::spawn("bench-probe listen", &mut cmd)?;
    let out = guard
        .child_mut()
        .and_then(|c| c.stdout.take())
        .context("probe listener has no stdout")?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    let addr = line.trim().to_string();
    if addr.is_empty() {
        bail!("probe listener printed no address");
    }
    Ok(Listener {
        addr,
        count_file,
        _guard: guard,
    })
}

/// Connections the listener accepted so far.
pub fn accepted(l: &Listener) -> u64 {
    std::fs::read_to_string(&l.count_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn run(
    cordon: &Cordon,
    probe: &Path,
    dir: &Path,
    rounds: u32,
    n: u32,
    max_secs: u32,
) -> ConnectResult {
    let mut res = ConnectResult::default();
    let l = match listener(probe, dir, "close", 3600) {
        Ok(l) => l,
        Err(e) => {
            res.errors.push(format!("{e:#}"));
            return res;
        }
    };
    let args = |c: &mut Command| {
        c.args([
            "connect-loop",
            &l.addr,
            &n.to_string(),
            &max_secs.to_string(),
        ]);
    };
    for round in 0..rounds {
        eprintln!("xtask: bench: connect loop round {}", round + 1);
        let mut outside = Command::new(probe);
        args(&mut outside);
        match one(&mut outside) {
            Ok(x) => res.outside.push(x),
            Err(e) => res
                .errors
                .push(format!("outside, round {}: {e:#}", round + 1)),
        }
        let mut inside = cordon.run_as(super::cordon::AGENT, probe);
        args(&mut inside);
        match one(&mut inside) {
            Ok(x) => res.inside.push(x),
            Err(e) => res
                .errors
                .push(format!("inside, round {}: {e:#}", round + 1)),
        }
    }
    let med = |v: &[Loop]| -> Option<Loop> {
        (!v.is_empty()).then(|| Loop {
            connects: v.iter().map(|x| x.connects).sum(),
            errors: v.iter().map(|x| x.errors).sum(),
            secs: v.iter().map(|x| x.secs).sum(),
            per_sec: median(v.iter().map(|x| x.per_sec).collect()),
            p50_us: median(v.iter().map(|x| x.p50_us).collect()),
            p99_us: median(v.iter().map(|x| x.p99_us).collect()),
            max_us: v.iter().map(|x| x.max_us).fold(0.0, f64::max),
            slow_over_10ms: v.iter().map(|x| x.slow_over_10ms).sum(),
            secs_in_connect: v.iter().map(|x| x.secs_in_connect).sum(),
        })
    };
    res.outside_median = med(&res.outside);
    res.inside_median = med(&res.inside);
    let pairs: Vec<(&Loop, &Loop)> = res.outside.iter().zip(res.inside.iter()).collect();
    if !pairs.is_empty() {
        res.added_p50 = Some(median(
            pairs
                .iter()
                .map(|(o, i)| i.p50_us / o.p50_us - 1.0)
                .collect(),
        ));
        res.added_per_connect = Some(median(
            pairs
                .iter()
                .map(|(o, i)| o.per_sec / i.per_sec - 1.0)
                .collect(),
        ));
    }
    res
}

fn one(cmd: &mut Command) -> anyhow::Result<Loop> {
    super::util::probe_json(cmd, "connect loop")
}
