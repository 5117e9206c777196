//! What the per-request `outcome` audit records cost: `cordon` (strict
//! durability, outcomes on, the default) against `cordon-no-outcomes`
//! (the same build and config with `[audit] outcomes = false`), both in the
//! HTTPS keep-alive and 1-connection scenarios, interleaved in every round
//! like the other daemons, so each ratio compares the two under the same
//! machine load.
use std::fmt::Write;

use serde::Serialize;

use super::{
    Results,
    goals::{self, Goal},
    median,
    rig::Via,
};

/// The scenarios both daemons run.
const SCENARIOS: [&str; 2] = ["https-keepalive", "https-1conn"];

#[derive(Serialize, Default)]
pub struct Outcomes {
    /// Why the daemon without outcome records is not part of the run.
    pub missing: Option<String>,
    pub compared: Vec<Compare>,
}

/// One scenario, medians over rounds (ratios: median of per-round ratios).
#[derive(Serialize)]
pub struct Compare {
    pub scenario: &'static str,
    pub rounds: u32,
    pub rps: f64,
    pub no_outcomes_rps: f64,
    /// `cordon` req/s over `cordon-no-outcomes` req/s.
    pub rps_ratio: f64,
    pub cpu_us_per_req: f64,
    pub no_outcomes_cpu_us_per_req: f64,
    pub cpu_ratio: f64,
    pub p50_ms: f64,
    pub no_outcomes_p50_ms: f64,
}

/// Fills the comparison from the HTTP results.
pub fn compare(r: &Results, missing: Option<String>) -> Outcomes {
    let compared = SCENARIOS
        .into_iter()
        .filter_map(|id| {
            let s = r.http.iter().find(|s| s.id == id)?;
            let (with, without) = (s.via(Via::Cordon)?, s.via(Via::CordonNoOutcomes)?);
            // (figures with, figures without, CPU/req with, CPU/req without)
            let pairs: Vec<_> = with
                .runs
                .iter()
                .filter_map(|x| {
                    let y = without.runs.iter().find(|y| y.round == x.round)?;
                    Some((x.figures, y.figures, x.cpu_us_per_req?, y.cpu_us_per_req?))
                })
                .collect();
            if pairs.is_empty() {
                return None;
            }
            let m = |f: &dyn Fn(&(_, _, f64, f64)) -> f64| median(pairs.iter().map(f).collect());
            Some(Compare {
                scenario: s.id,
                rounds: pairs.len() as u32,
                rps: m(&|p| p.0.rps),
                no_outcomes_rps: m(&|p| p.1.rps),
                rps_ratio: m(&|p| p.0.rps / p.1.rps),
                cpu_us_per_req: m(&|p| p.2),
                no_outcomes_cpu_us_per_req: m(&|p| p.3),
                cpu_ratio: m(&|p| p.2 / p.3),
                p50_ms: m(&|p| p.0.p50_ms),
                no_outcomes_p50_ms: m(&|p| p.1.p50_ms),
            })
        })
        .collect();
    Outcomes { missing, compared }
}

/// The report's section on outcome records.
pub fn section(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## The cost of outcome records, same run\n\n\
         `cordon-no-outcomes` is a fourth daemon from this build, strict durability like `cordon`, with \
         `[audit] outcomes = false` (no per-request `outcome` record; decisions are still recorded). Its load runs \
         inside its own agent cgroup, interleaved with the others in every round. CPU per request is the daemon's \
         utime+stime over the run divided by the requests that succeeded; every ratio is `cordon` over \
         `cordon-no-outcomes` in the same round, median over rounds. Goal: keep-alive req/s ratio >= 0.95.\n"
    );
    let o = &r.outcomes;
    if let Some(why) = &o.missing {
        let _ = writeln!(
            s,
            "**Not part of this run**: the daemon without outcome records did not start: {}\n",
            why.replace('\n', " ")
        );
        return s;
    }
    if o.compared.is_empty() {
        let _ = writeln!(s, "No round ran both daemons: nothing to compare.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "| scenario | rounds | req/s, cordon | no outcomes | cordon / no outcomes | CPU us/req, cordon | no outcomes | cordon / no outcomes | p50 ms, cordon | no outcomes |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &o.compared {
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.0} | {:.0} | {:.3}x | {:.1} | {:.1} | {:.3}x | {:.3} | {:.3} |",
            c.scenario,
            c.rounds,
            c.rps,
            c.no_outcomes_rps,
            c.rps_ratio,
            c.cpu_us_per_req,
            c.no_outcomes_cpu_us_per_req,
            c.cpu_ratio,
            c.p50_ms,
            c.no_outcomes_p50_ms
        );
    }
    let _ = writeln!(s);
    s
}

/// Keep-alive throughput within 5% of the run without outcome records.
pub fn goal(r: &Results) -> Goal {
    let ka = r
        .outcomes
        .compared
        .iter()
        .find(|c| c.scenario == "https-keepalive");
    goals::goal(
        "outcome records: HTTPS keep-alive >= 0.95x the same daemon without them",
        ka.map(|c| {
            (
                c.rps_ratio,
                format!(
                    "{:.3}x ({:.0} req/s with, {:.0} without)",
                    c.rps_ratio, c.rps, c.no_outcomes_rps
                ),
            )
        }),
        |v| v >= 0.95,
    )
}
