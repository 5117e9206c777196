//! `--baseline-cordon PATH`: another build's daemon beside this one, in
//! the same run (issue 14: "record keep-alive CPU per request before and
//! after in the same run"). Both are strict-durability daemons with the
//! same config and policy; their runs are interleaved with the others, so
//! each round compares the two builds under the same machine load.
use std::{fmt::Write, path::Path, process::Command};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{Results, median, rig::Via};

#[derive(Serialize, Default)]
pub struct Baseline {
    pub binary: String,
    pub version: String,
    /// `https-keepalive` and `https-1conn`, this build against the baseline.
    pub compared: Vec<Compare>,
}

/// One scenario: per round, then the medians over rounds (the ratios are
/// medians of per-round ratios, like every other ratio of the report).
#[derive(Serialize)]
pub struct Compare {
    pub scenario: &'static str,
    pub rounds: Vec<RoundCmp>,
    pub cpu_us_per_req: f64,
    pub baseline_cpu_us_per_req: f64,
    /// This build's CPU per request over the baseline's.
    pub cpu_ratio: f64,
    pub rps: f64,
    pub baseline_rps: f64,
    pub rps_ratio: f64,
    pub p50_ms: f64,
    pub baseline_p50_ms: f64,
}

#[derive(Serialize, Clone, Copy)]
pub struct RoundCmp {
    pub round: u32,
    pub cpu_us_per_req: f64,
    pub baseline_cpu_us_per_req: f64,
    pub rps: f64,
    pub baseline_rps: f64,
    pub p50_ms: f64,
    pub baseline_p50_ms: f64,
}

/// Checks the binary runs before anything is measured.
pub fn describe(bin: &Path) -> anyhow::Result<Baseline> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    if !out.status.success() {
        bail!("{} --version failed ({})", bin.display(), out.status);
    }
    let mut version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if let Some(rev) = checkout_rev(bin) {
        version.push_str(&format!(", built in a checkout at {rev}"));
    }
    Ok(Baseline {
        binary: bin.display().to_string(),
        version,
        compared: vec![],
    })
}

/// `cordon --version` names no commit: when the binary sits in a git
/// checkout (its `target/`), that checkout's HEAD says which build it is.
fn checkout_rev(bin: &Path) -> Option<String> {
    let dir = bin.parent()?;
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%h"])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// Fills `compared` from the HTTP results.
pub fn compare(r: &mut Results) {
    let Some(b) = r.baseline.as_mut() else {
        return;
    };
    b.compared = ["https-keepalive", "https-1conn"]
        .into_iter()
        .filter_map(|id| {
            let s = r.http.iter().find(|s| s.id == id)?;
            let (this, base) = (s.via(Via::Cordon)?, s.via(Via::CordonBaseline)?);
            let rounds: Vec<RoundCmp> = this
                .runs
                .iter()
                .filter_map(|x| {
                    let y = base.runs.iter().find(|y| y.round == x.round)?;
                    Some(RoundCmp {
                        round: x.round,
                        cpu_us_per_req: x.cpu_us_per_req?,
                        baseline_cpu_us_per_req: y.cpu_us_per_req?,
                        rps: x.figures.rps,
                        baseline_rps: y.figures.rps,
                        p50_ms: x.figures.p50_ms,
                        baseline_p50_ms: y.figures.p50_ms,
                    })
                })
                .collect();
            if rounds.is_empty() {
                return None;
            }
            let m = |f: fn(&RoundCmp) -> f64| median(rounds.iter().map(f).collect());
            Some(Compare {
                scenario: s.id,
                cpu_us_per_req: m(|c| c.cpu_us_per_req),
                baseline_cpu_us_per_req: m(|c| c.baseline_cpu_us_per_req),
                cpu_ratio: m(|c| c.cpu_us_per_req / c.baseline_cpu_us_per_req),
                rps: m(|c| c.rps),
                baseline_rps: m(|c| c.baseline_rps),
                rps_ratio: m(|c| c.rps / c.baseline_rps),
                p50_ms: m(|c| c.p50_ms),
                baseline_p50_ms: m(|c| c.baseline_p50_ms),
                rounds,
            })
        })
        .collect();
}

/// The report's "before and after" section (empty without a baseline).
pub fn section(r: &Results) -> String {
    let mut s = String::new();
    let Some(b) = &r.baseline else {
        return s;
    };
    let _ = writeln!(
        s,
        "## This build against a baseline build, same run\n\n\
         `--baseline-cordon {}` ({}): a third daemon from that binary, strict durability, the same config and policy, \
         its load run inside its own agent cgroup by its own `cordon run`, interleaved with the others in every round. \
         CPU per request is the daemon's utime+stime over the run divided by the requests that succeeded (2xx); every \
         ratio is this build over the baseline in the same round, median over rounds.\n",
        b.binary, b.version
    );
    if b.compared.is_empty() {
        let _ = writeln!(s, "No round ran both daemons: nothing to compare.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "| scenario | CPU us/req, this build | baseline | this / baseline | req/s, this build | baseline | this / baseline | p50 ms, this build | baseline |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for c in &b.compared {
        let _ = writeln!(
            s,
            "| `{}` | {:.1} | {:.1} | {:.3}x | {:.0} | {:.0} | {:.3}x | {:.3} | {:.3} |",
            c.scenario,
            c.cpu_us_per_req,
            c.baseline_cpu_us_per_req,
            c.cpu_ratio,
            c.rps,
            c.baseline_rps,
            c.rps_ratio,
            c.p50_ms,
            c.baseline_p50_ms
        );
    }
    let _ = writeln!(
        s,
        "\nPer round (CPU us/req this / baseline, req/s this / baseline):\n"
    );
    for c in &b.compared {
        let rounds: Vec<String> = c
            .rounds
            .iter()
            .map(|x| {
                format!(
                    "round {}: {:.1} / {:.1} us, {:.0} / {:.0} req/s",
                    x.round + 1,
                    x.cpu_us_per_req,
                    x.baseline_cpu_us_per_req,
                    x.rps,
                    x.baseline_rps
                )
            })
            .collect();
        let _ = writeln!(s, "- `{}`: {}", c.scenario, rounds.join("; "));
    }
    let _ = writeln!(s);
    s
}
