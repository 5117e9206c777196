//! Scenarios 8 and 9: the criterion benchmarks of the policy decision and
//! of strict-mode audit appends, read back from criterion's own
//! `<target>/criterion/<group>/<id>/new/estimates.json` (times in ns).
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::sys::cargo;

#[derive(Serialize, Clone, Debug)]
pub struct Estimate {
    pub id: String,
    /// Criterion's median time per iteration, ns.
    pub median_ns: f64,
    pub low_ns: f64,
    pub high_ns: f64,
}

#[derive(Serialize, Default)]
pub struct CriterionResult {
    pub policy: Vec<Estimate>,
    pub audit: Vec<Estimate>,
    pub errors: Vec<String>,
}

/// Compiles both benches without running them (part of setup, so the
/// measured phase does not include a release build).
pub fn build() -> anyhow::Result<()> {
    // One package per invocation, exactly as `run` does: building both in
    // one command unifies features differently and `run` would rebuild.
    crate::sys::run(cargo().args([
        "bench",
        "--no-run",
        "-p",
        "cordon-policy",
        "--bench",
        "decide",
    ]))?;
    crate::sys::run(cargo().args([
        "bench",
        "--no-run",
        "-p",
        "cordon-audit",
        "--bench",
        "append",
    ]))
}

pub fn run(target_dir: &Path, quick: bool) -> CriterionResult {
    let mut res = CriterionResult::default();
    let mut policy = cargo();
    policy.args(["bench", "-p", "cordon-policy", "--bench", "decide", "--"]);
    if quick {
        policy.args(["--warm-up-time", "1", "--measurement-time", "1"]);
    }
    let mut audit = cargo();
    audit.args(["bench", "-p", "cordon-audit", "--bench", "append", "--"]);
    if quick {
        // Its group fixes 10 samples of 5 s each; quick runs one level.
        audit.args(["--warm-up-time", "1", "strict_append(_wal)?/64"]);
    }
    let crit = target_dir.join("criterion");
    eprintln!("xtask: bench: policy decision (criterion)");
    match crate::sys::run(&mut policy) {
        Ok(()) => {
            res.policy = collect(
                &crit,
                "decide",
                &[
                    "set/1",
                    "set/100",
                    "set/1000",
                    "engine/1",
                    "engine/100",
                    "engine/1000",
                ],
                &mut res.errors,
            )
        }
        Err(e) => res.errors.push(format!("policy bench: {e:#}")),
    }
    eprintln!("xtask: bench: audit strict appends (criterion)");
    let levels: &[&str] = if quick { &["64"] } else { &["1", "16", "64"] };
    match crate::sys::run(&mut audit) {
        Ok(()) => {
            // Without the write-ahead log (every group a durable redb commit), then
            // with it, as the daemon runs.
            res.audit = collect(&crit, "strict_append", levels, &mut res.errors);
            res.audit
                .extend(collect(&crit, "strict_append_wal", levels, &mut res.errors));
        }
        Err(e) => res.errors.push(format!("audit bench: {e:#}")),
    }
    res
}

fn collect(crit: &Path, group: &str, ids: &[&str], errors: &mut Vec<String>) -> Vec<Estimate> {
    ids.iter()
        .filter_map(|id| match read(crit, group, id) {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(format!("{e:#}"));
                None
            }
        })
        .collect()
}

fn read(crit: &Path, group: &str, id: &str) -> anyhow::Result<Estimate> {
    let path = crit.join(group).join(id).join("new/estimates.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let get = |k: &str| v.pointer(k).and_then(Value::as_f64);
    Ok(Estimate {
        id: format!("{group}/{id}"),
        median_ns: get("/median/point_estimate")
            .with_context(|| format!("{}: no median.point_estimate", path.display()))?,
        low_ns: get("/median/confidence_interval/lower_bound").unwrap_or(f64::NAN),
        high_ns: get("/median/confidence_interval/upper_bound").unwrap_or(f64::NAN),
    })
}
