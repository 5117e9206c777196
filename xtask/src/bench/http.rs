//! The HTTP load scenarios (`specs`): the same oha load sent direct,
//! through the bare forwarder (`oha --connect-to`), through Cordon (oha
//! inside an agent cgroup, no proxy setting) and through the peers
//! (explicit proxy). Runs are interleaved (direct, bare, cordon, ..., then
//! again) and each figure is compared with the direct and the bare run of
//! the same round, because direct itself moves 15-25% between rounds.
use std::process::Command;

use serde::Serialize;

use super::{
    median,
    oha::{self, Figures, Load, Target},
    proc::{Meter, Usage},
    rig::{Rig, Via},
    specs::{Scheme, Spec},
    upstream::BIG_PATH,
    wakeups,
};

#[derive(Serialize)]
pub struct RunResult {
    pub round: u32,
    pub figures: Figures,
    /// The proxy's CPU and peak RSS during this run (none for direct).
    pub usage: Option<Usage>,
    /// The proxy's CPU seconds over the run / successful requests, in us.
    pub cpu_us_per_req: Option<f64>,
    /// Wakeups and context switches of the proxy's threads over the run (keep-alive only).
    pub wakeups: Option<wakeups::Counts>,
}

#[derive(Serialize)]
pub struct ViaResult {
    pub via: Via,
    pub runs: Vec<RunResult>,
    /// Per figure, the median over rounds.
    pub median: Option<Figures>,
    pub usage: Option<Usage>,
    pub cpu_us_per_req: Option<f64>,
    /// Per request, median over rounds: wakeups (when perf counted them), context switches,
    /// and how they were counted.
    pub wakeups_per_req: Option<(Option<f64>, f64, wakeups::Source)>,
    /// Per figure, the median over rounds of (this run / direct in the same round).
    pub ratio: Option<Figures>,
    /// The same against the bare forwarder's run of the same round.
    pub ratio_bare: Option<Figures>,
    pub errors: Vec<String>,
}

#[derive(Serialize)]
pub struct ScenarioResult {
    pub id: &'static str,
    pub title: &'static str,
    pub url: String,
    pub load: String,
    pub note: String,
    pub vias: Vec<ViaResult>,
}

impl ScenarioResult {
    pub fn via(&self, v: Via) -> Option<&ViaResult> {
        self.vias.iter().find(|r| r.via == v)
    }
}

pub fn run(rig: &Rig, spec: &Spec, rounds: u32) -> ScenarioResult {
    let mut results: Vec<ViaResult> = spec
        .vias
        .iter()
        .filter(|v| rig.has(**v))
        .map(|&via| ViaResult {
            via,
            runs: vec![],
            median: None,
            usage: None,
            cpu_us_per_req: None,
            wakeups_per_req: None,
            ratio: None,
            ratio_bare: None,
            errors: vec![],
        })
        .collect();
    let mut note = spec.note.to_string();
    let vias: Vec<Via> = results.iter().map(|r| r.via).collect();
    for round in 0..rounds {
        for i in run_order(&vias, round) {
            let r = &mut results[i];
            if let Some(why) = rig.missing(r.via) {
                if round == 0 {
                    r.errors.push(format!("not installed/started: {why}"));
                }
                continue;
            }
            eprintln!(
                "xtask: bench: {} round {} via {}",
                spec.id,
                round + 1,
                r.via.name()
            );
            match run_one(rig, spec, r.via) {
                Ok((figures, usage, wakeups)) => r.runs.push(RunResult {
                    round,
                    figures,
                    usage,
                    cpu_us_per_req: usage
                        .filter(|_| figures.ok > 0)
                        .map(|u| u.cpu_secs / figures.ok as f64 * 1e6),
                    wakeups,
                }),
                Err(e) => r.errors.push(format!("round {}: {e:#}", round + 1)),
            }
        }
    }
    let by_round = |via: Via| -> Vec<(u32, Figures)> {
        results
            .iter()
            .find(|r| r.via == via)
            .map(|r| r.runs.iter().map(|x| (x.round, x.figures)).collect())
            .unwrap_or_default()
    };
    let (direct, bare) = (by_round(Via::Direct), by_round(Via::Bare));
    for r in results.iter_mut() {
        summarize(r);
        r.ratio = ratios(&r.runs, &direct);
        r.ratio_bare = ratios(&r.runs, &bare);
    }
    if spec.big {
        note.push_str(" Cordon's daemon RSS before/after is in the memory section.");
    }
    ScenarioResult {
        id: spec.id,
        title: spec.title,
        url: url(rig, spec, Via::Cordon),
        load: describe(&spec.load),
        note: note.trim().to_string(),
        vias: results,
    }
}

/// The upstream port a via sends this scenario to: direct cannot send h2
/// to the HTTP/1.1-only port (see the scenario's note).
fn port(rig: &Rig, spec: &Spec, via: Via) -> u16 {
    match spec.scheme {
        Scheme::Http => rig.upstream.http,
        Scheme::Https if spec.h1_only && via != Via::Direct => rig.upstream.https_h1,
        Scheme::Https => rig.upstream.https,
    }
}

fn host(spec: &Spec) -> &'static str {
    match spec.scheme {
        Scheme::Https => "localhost",
        // A plain-HTTP Host name would have to be resolved through Cordon's DNS.
        Scheme::Http => "127.0.0.1",
    }
}

fn url(rig: &Rig, spec: &Spec, via: Via) -> String {
    let path = if spec.big { BIG_PATH } else { "/" };
    let scheme = match spec.scheme {
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    format!("{scheme}://{}:{}{path}", host(spec), port(rig, spec, via))
}

fn describe(l: &Load) -> String {
    let mut s = format!("oha -z {}s -c {}", l.secs, l.connections);
    if !l.keepalive {
        s.push_str(" --disable-keepalive");
    }
    if let Some(p) = l.h2_streams {
        s.push_str(&format!(" --http2 -p {p}"));
    }
    s
}

/// The scenario whose runs also count the proxy's wakeups (issue 18).
const WAKEUPS_SCENARIO: &str = "https-keepalive";

type Measured = (Figures, Option<Usage>, Option<wakeups::Counts>);

fn run_one(rig: &Rig, spec: &Spec, via: Via) -> anyhow::Result<Measured> {
    let url = url(rig, spec, via);
    let agent_ca = rig.cordon(via).map(|c| c.agent_ca());
    let bare = rig.bare.as_ref().ok().filter(|_| via == Via::Bare);
    let ca = match (via, spec.scheme) {
        (_, Scheme::Http) => None,
        (Via::Direct, _) => Some(rig.certs.upstream_ca.as_path()),
        (Via::Bare, _) => bare.map(|b| b.ca.as_path()),
        (Via::Cordon | Via::CordonBatched | Via::CordonBaseline | Via::CordonNoOutcomes, _) => {
            agent_ca.as_deref()
        }
        _ => rig.peer(via).map(|p| p.client_ca.as_path()),
    };
    let target = Target {
        url: &url,
        proxy: rig.peer(via).map(|p| p.port),
        ca,
        connect_to: bare.and_then(|b| b.connect_to(host(spec), port(rig, spec, via))),
    };
    let args = oha::args(&spec.load, &target);
    let mut cmd = match rig.cordon(via) {
        Some(c) => c.run_as(super::cordon::AGENT, &rig.oha),
        None => Command::new(&rig.oha),
    };
    cmd.args(&args);
    // The counter starts first: perf's attach time stays out of the CPU figures.
    let counter = rig
        .proxy_pid(via)
        .filter(|_| spec.id == WAKEUPS_SCENARIO)
        .map(wakeups::Counter::start);
    let meter = rig.proxy_pid(via).map(Meter::start);
    let result = oha::run(&mut cmd);
    let usage = meter.map(Meter::finish);
    let counted = counter.map(wakeups::Counter::finish);
    Ok((result?, usage, counted))
}

fn summarize(r: &mut ViaResult) {
    if r.runs.is_empty() {
        return;
    }
    let pick = |f: fn(&Figures) -> f64| median(r.runs.iter().map(|x| f(&x.figures)).collect());
    r.median = Some(Figures {
        rps: pick(|f| f.rps),
        p50_ms: pick(|f| f.p50_ms),
        p99_ms: pick(|f| f.p99_ms),
        failed: r.runs.iter().map(|x| x.figures.failed).sum(),
        ok: r.runs.iter().map(|x| x.figures.ok).sum(),
    });
    let usages: Vec<Usage> = r.runs.iter().filter_map(|x| x.usage).collect();
    if !usages.is_empty() {
        r.usage = Some(Usage {
            cores: median(usages.iter().map(|u| u.cores).collect()),
            cpu_secs: median(usages.iter().map(|u| u.cpu_secs).collect()),
            peak_rss_mib: usages.iter().map(|u| u.peak_rss_mib).fold(0.0, f64::max),
        });
    }
    let per_req: Vec<f64> = r.runs.iter().filter_map(|x| x.cpu_us_per_req).collect();
    r.cpu_us_per_req = (!per_req.is_empty()).then(|| median(per_req));
    let counted: Vec<(wakeups::Counts, u64)> = r
        .runs
        .iter()
        .filter_map(|x| Some((x.wakeups?, x.figures.ok)))
        .collect();
    r.wakeups_per_req = wakeups::per_request(&counted);
}

/// Per figure, the median over rounds of (run / reference run of the same
/// round); None when no round has both.
fn ratios(runs: &[RunResult], reference: &[(u32, Figures)]) -> Option<Figures> {
    let pairs: Vec<(&Figures, &Figures)> = runs
        .iter()
        .filter_map(|x| {
            reference
                .iter()
                .find(|(round, _)| *round == x.round)
                .map(|(_, d)| (&x.figures, d))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let ratio = |f: fn(&Figures) -> f64| median(pairs.iter().map(|(a, d)| f(a) / f(d)).collect());
    Some(Figures {
        rps: ratio(|f| f.rps),
        p50_ms: ratio(|f| f.p50_ms),
        p99_ms: ratio(|f| f.p99_ms),
        failed: 0,
        ok: 0,
    })
}

/// Cordon's daemons are compared with each other in the same round (outcomes, baseline,
/// batched), so their places in a round rotate: no daemon runs right after the bare forwarder,
/// or last before the peers, in every round. Direct, the bare forwarder and the peers keep
/// theirs. Indices into `vias`.
fn run_order(vias: &[Via], round: u32) -> Vec<usize> {
    let is_cordon = |v: &Via| {
        matches!(
            v,
            Via::Cordon | Via::CordonBatched | Via::CordonBaseline | Via::CordonNoOutcomes
        )
    };
    let places: Vec<usize> = (0..vias.len()).filter(|&i| is_cordon(&vias[i])).collect();
    let mut order: Vec<usize> = (0..vias.len()).collect();
    if !places.is_empty() {
        let shift = round as usize % places.len();
        for (k, &place) in places.iter().enumerate() {
            order[place] = places[(k + shift) % places.len()];
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: u32, rps: f64) -> RunResult {
        RunResult {
            round,
            figures: Figures {
                rps,
                p50_ms: 1.0,
                p99_ms: 2.0,
                failed: 0,
                ok: 1,
            },
            usage: None,
            cpu_us_per_req: None,
            wakeups: None,
        }
    }

    #[test]
    fn ratios_pair_runs_with_the_reference_of_the_same_round_only() {
        let runs = [run(0, 10.0), run(1, 30.0), run(2, 99.0)];
        let reference = [(0, run(0, 20.0).figures), (1, run(1, 30.0).figures)];
        // Round 2 has no reference run: left out, not compared with another round.
        let r = ratios(&runs, &reference).unwrap();
        assert_eq!(r.rps, 0.75);
        assert_eq!(r.p50_ms, 1.0);
        assert!(ratios(&runs, &[]).is_none());
    }

    #[test]
    fn cordon_daemons_take_turns_at_each_place_and_the_others_keep_theirs() {
        use Via::*;
        let vias = [Direct, Bare, Cordon, CordonBatched, CordonNoOutcomes, Squid];
        assert_eq!(run_order(&vias, 0), [0, 1, 2, 3, 4, 5]);
        assert_eq!(run_order(&vias, 1), [0, 1, 3, 4, 2, 5]);
        assert_eq!(run_order(&vias, 2), [0, 1, 4, 2, 3, 5]);
        assert_eq!(run_order(&vias, 3), [0, 1, 2, 3, 4, 5]);
        assert_eq!(run_order(&[Direct, Squid], 1), [0, 1]);
    }
}
