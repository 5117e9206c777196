//! The goals, judged from this run's figures. A goal whose figure
//! is missing (a peer not installed, a scenario that failed, a scenario
//! `--quick` skips) is "not measured", never met.
use serde::Serialize;

use super::{Results, median, rig::Via};

#[derive(Serialize, Clone)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    /// None: not measured in this run.
    pub met: Option<bool>,
}

pub fn goal(goal: &str, measured: Option<(f64, String)>, ok: impl Fn(f64) -> bool) -> Goal {
    match measured {
        Some((v, text)) => Goal {
            goal: goal.into(),
            measured: text,
            met: Some(v.is_finite() && ok(v)),
        },
        None => Goal {
            goal: goal.into(),
            measured: "not measured".into(),
            met: None,
        },
    }
}

/// Per round, `f(via) / f(other)` for rounds where both ran; the median.
fn round_ratio(
    r: &Results,
    scenario: &str,
    a: Via,
    b: Via,
    f: fn(&super::oha::Figures) -> f64,
) -> Option<f64> {
    let s = r.http.iter().find(|s| s.id == scenario)?;
    let (ra, rb) = (s.via(a)?, s.via(b)?);
    let v: Vec<f64> = ra
        .runs
        .iter()
        .filter_map(|x| {
            rb.runs
                .iter()
                .find(|y| y.round == x.round)
                .map(|y| f(&x.figures) / f(&y.figures))
        })
        .collect();
    (!v.is_empty()).then(|| median(v))
}

/// Per round, the proxy's CPU per request through `a` over `b`'s; the median.
fn cpu_per_req_ratio(r: &Results, scenario: &str, a: Via, b: Via) -> Option<f64> {
    let s = r.http.iter().find(|s| s.id == scenario)?;
    let (ra, rb) = (s.via(a)?, s.via(b)?);
    let v: Vec<f64> = ra
        .runs
        .iter()
        .filter_map(|x| {
            let y = rb.runs.iter().find(|y| y.round == x.round)?;
            Some(x.cpu_us_per_req? / y.cpu_us_per_req?)
        })
        .collect();
    (!v.is_empty()).then(|| median(v))
}

/// Issue 18's goals against the bare forwarder, all from the same rounds.
fn against_bare(r: &Results) -> Vec<Goal> {
    let x = |v: Option<f64>| v.map(|v| (v, format!("{v:.3}x")));
    let ka = r.http.iter().find(|s| s.id == "https-keepalive");
    let us = |via| {
        ka.and_then(|s| s.via(via))
            .and_then(|v| v.cpu_us_per_req)
            .unwrap_or(f64::NAN)
    };
    let cpu = cpu_per_req_ratio(r, "https-keepalive", Via::Cordon, Via::Bare).map(|v| {
        (
            v,
            format!(
                "{v:.3}x ({:.1} us cordon, {:.1} us bare forwarder)",
                us(Via::Cordon),
                us(Via::Bare)
            ),
        )
    });
    vec![
        goal(
            "(issue 18) HTTPS keep-alive, 64 connections >= 0.8x bare forwarder",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::Cordon,
                Via::Bare,
                |f| f.rps,
            )),
            |v| v >= 0.8,
        ),
        goal(
            "(issue 18) daemon CPU per keep-alive request <= 1.3x the bare forwarder's",
            cpu,
            |v| v <= 1.3,
        ),
        goal(
            "(issue 18) HTTPS keep-alive >= 2.5x Squid",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::Cordon,
                Via::Squid,
                |f| f.rps,
            )),
            |v| v >= 2.5,
        ),
        goal(
            "(issue 18) batched audit, 1 connection: p50 added <= 150 us over direct",
            added_p50_us(r, "https-1conn", Via::CordonBatched).map(|v| (v, format!("+{v:.0} us"))),
            |v| v <= 150.0,
        ),
        strict_within_one_fsync(r),
        goal(
            "(issue 18) HTTP/2 8x8 streams >= 0.8x bare forwarder",
            x(round_ratio(r, "https-h2", Via::Cordon, Via::Bare, |f| {
                f.rps
            })),
            |v| v >= 0.8,
        ),
    ]
}

/// Strict durability waits for one group-commit fsync: its added p50 is
/// judged against the disk's own fdatasync, measured in this run.
fn strict_within_one_fsync(r: &Results) -> Goal {
    let name = "(issue 18) strict audit, 1 connection: p50 added <= one fsync + 100 us";
    let (Some(added), Some(fsync)) = (added_p50_us(r, "https-1conn", Via::Cordon), r.fsync) else {
        return goal(name, None, |_| false);
    };
    let bound = fsync.p50_us + 100.0;
    goal(
        name,
        Some((
            added - bound,
            format!(
                "+{added:.0} us (fsync p50 {:.0} us, so at most +{bound:.0} us)",
                fsync.p50_us
            ),
        )),
        |over| over <= 0.0,
    )
}

fn added_p50_us(r: &Results, scenario: &str, via: Via) -> Option<f64> {
    let s = r.http.iter().find(|s| s.id == scenario)?;
    let (c, d) = (s.via(via)?, s.via(Via::Direct)?);
    let v: Vec<f64> = c
        .runs
        .iter()
        .filter_map(|x| {
            d.runs
                .iter()
                .find(|y| y.round == x.round)
                .map(|y| (x.figures.p50_ms - y.figures.p50_ms) * 1e3)
        })
        .collect();
    (!v.is_empty()).then(|| median(v))
}

pub fn judge(r: &Results) -> Vec<Goal> {
    let x = |v: Option<f64>| v.map(|v| (v, format!("{v:.3}x")));
    let mut g = vec![
        goal(
            "HTTPS keep-alive >= 0.45x direct",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::Cordon,
                Via::Direct,
                |f| f.rps,
            )),
            |v| v >= 0.45,
        ),
        goal(
            "HTTPS keep-alive >= 3x Squid",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::Cordon,
                Via::Squid,
                |f| f.rps,
            )),
            |v| v >= 3.0,
        ),
        goal(
            "HTTPS keep-alive >= 50x mitmproxy",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::Cordon,
                Via::Mitmproxy,
                |f| f.rps,
            )),
            |v| v >= 50.0,
        ),
        goal(
            "HTTPS new connection per request >= 0.35x direct",
            x(round_ratio(
                r,
                "https-new-conn",
                Via::Cordon,
                Via::Direct,
                |f| f.rps,
            )),
            |v| v >= 0.35,
        ),
        goal(
            "1 connection: p50 added latency <= 130 us over direct",
            added_p50_us(r, "https-1conn", Via::Cordon).map(|v| (v, format!("+{v:.0} us"))),
            |v| v <= 130.0,
        ),
        // The default audit waits for an fsync per group; the peers write
        // their logs without one. The same goals with batched audit:
        goal(
            "(batched audit) HTTPS keep-alive >= 0.45x direct",
            x(round_ratio(
                r,
                "https-keepalive",
                Via::CordonBatched,
                Via::Direct,
                |f| f.rps,
            )),
            |v| v >= 0.45,
        ),
        goal(
            "(batched audit) 1 connection: p50 added latency <= 130 us over direct",
            added_p50_us(r, "https-1conn", Via::CordonBatched).map(|v| (v, format!("+{v:.0} us"))),
            |v| v <= 130.0,
        ),
    ];
    g.extend(against_bare(r));
    // Each against a baseline from the same rounds.
    g.push(super::outcomes::goal(r));
    g.push(super::jit_report::goal(r));
    g.push(super::console_paint::goal(&r.console));
    g.extend(super::fairness::goals(&r.fairness));
    let policy = r
        .criterion
        .policy
        .iter()
        .find(|e| e.id == "decide/engine/1000");
    g.push(goal(
        "policy decision p50 <= 2 us at 1,000 rules (engine)",
        policy.map(|e| (e.median_ns, format!("{:.2} us", e.median_ns / 1e3))),
        |v| v <= 2000.0,
    ));
    let kill = (!r.kill.rounds.is_empty()).then(|| {
        // A round whose freeze was never seen counts as infinitely slow.
        let worst = r
            .kill
            .rounds
            .iter()
            .map(|k| k.frozen_us.unwrap_or(f64::INFINITY))
            .fold(0.0, f64::max);
        let worst_return = r.kill.rounds.iter().map(|k| k.cli_us).fold(0.0, f64::max);
        let leaked: u64 = r.kill.rounds.iter().map(|k| k.arrived_after).sum();
        let ok = worst < 20_000.0 && leaked == 0;
        (
            if ok { 1.0 } else { 0.0 },
            format!(
                "worst {:.1} ms to frozen ({:.1} ms to return) over {} rounds, {leaked} requests arrived after return",
                worst / 1e3,
                worst_return / 1e3,
                r.kill.rounds.len()
            ),
        )
    });
    g.push(goal(
        "kill: command start to frozen < 20 ms, no request leaked",
        kill,
        |v| v > 0.5,
    ));
    let mib = |v: Option<f64>| v.map(|v| (v, format!("{v:.1} MiB")));
    g.push(goal(
        "RSS <= 30 MiB idle (fresh daemon)",
        mib(r.memory.idle_fresh_mib),
        |v| v <= 30.0,
    ));
    g.push(goal(
        "RSS <= 30 MiB idle (after the load scenarios)",
        mib(r.memory.idle_after_load_mib),
        |v| v <= 30.0,
    ));
    let ten_k = r
        .memory
        .idle_conns
        .levels
        .iter()
        .find(|l| l.connections == 10_000);
    g.push(goal(
        "RSS <= 150 MiB with 10,000 idle connections",
        ten_k.map(|l| {
            let all = l.spliced >= 10_000;
            (
                if all { l.rss_held_mib } else { f64::INFINITY },
                format!(
                    "{:.1} MiB ({} of 10,000 connections through)",
                    l.rss_held_mib, l.spliced
                ),
            )
        }),
        |v| v <= 150.0,
    ));
    let big = r.memory.big.as_ref().map(|b| {
        let (grow, after) = (b.peak_mib - b.before_mib, b.after_mib - b.before_mib);
        let ok = grow <= 16.0 && after <= 4.0;
        (
            if ok { 1.0 } else { 0.0 },
            format!(
                "{:.1} MiB before, peak {:.1}, {:.1} after",
                b.before_mib, b.peak_mib, b.after_mib
            ),
        )
    });
    g.push(goal(
        "1 MiB transfers: no RSS growth (peak <= before + 16 MiB, after <= before + 4 MiB)",
        big,
        |v| v > 0.5,
    ));
    // Judged on the loop's time per connect: the decision runs after
    // connect() returns, so connect() latency alone would leave it out.
    let c = r.connect.added_per_connect.map(|v| {
        (
            v,
            format!(
                "+{:.0}% time per connect+close, +{:.0}% connect() p50",
                v * 100.0,
                r.connect.added_p50.unwrap_or(f64::NAN) * 100.0
            ),
        )
    });
    g.push(goal(
        "eBPF redirect + decision <= 25% added to a loopback connect+close loop",
        c,
        |v| v <= 0.25,
    ));
    // Judged on wall time per iteration, inside over outside in adjacent
    // blocks: what the agent's containment adds to each call.
    for (what, pair) in [
        ("open()+close()", &r.contain.open),
        ("fork+exec of /bin/true", &r.contain.spawn),
    ] {
        let measured = pair.ratio.map(|v| {
            (
                v,
                format!(
                    "{v:.3}x ({:.0} ns/op inside, {:.0} outside)",
                    pair.inside_ns_per_op.unwrap_or(f64::NAN),
                    pair.outside_ns_per_op.unwrap_or(f64::NAN)
                ),
            )
        });
        g.push(goal(
            &format!("host containment: {what} inside an agent <= 1.15x outside"),
            measured,
            |v| v <= 1.15,
        ));
    }
    g
}
