//! The HTTP load scenarios (1-6): the same oha load sent direct, through
//! Cordon (oha inside an agent cgroup, no proxy setting) and through the
//! peers (explicit proxy). Runs are interleaved (direct, cordon, squid,
//! mitmproxy, then again) and each figure is compared with the direct run
//! of the same round, because direct itself moves 15-25% between rounds.
use std::process::Command;

use serde::Serialize;

use super::{
    median,
    oha::{self, Figures, Load, Target},
    proc::{Meter, Usage},
    rig::{Rig, Via},
    upstream::BIG_PATH,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Https,
    Http,
}

pub struct Spec {
    pub id: &'static str,
    pub title: &'static str,
    pub scheme: Scheme,
    pub big: bool,
    pub load: Load,
    pub vias: &'static [Via],
    /// Why a peer is left out of this scenario.
    pub note: &'static str,
}

const ALL: &[Via] = &[Via::Direct, Via::Cordon, Via::Squid, Via::Mitmproxy];
/// Where the audit's fsync decides the figure: also with batched audit.
const WITH_BATCHED: &[Via] = &[
    Via::Direct,
    Via::Cordon,
    Via::CordonBatched,
    Via::Squid,
    Via::Mitmproxy,
];

pub fn specs(secs: u32) -> Vec<Spec> {
    let load = |connections, keepalive, h2_streams| Load {
        connections,
        keepalive,
        h2_streams,
        secs,
    };
    vec![
        Spec {
            id: "https-keepalive",
            title: "HTTPS keep-alive, small GET, 64 connections",
            scheme: Scheme::Https,
            big: false,
            load: load(64, true, None),
            vias: WITH_BATCHED,
            note: "",
        },
        Spec {
            id: "https-new-conn",
            title: "HTTPS, a new connection per request, 64 concurrent",
            scheme: Scheme::Https,
            big: false,
            load: load(64, false, None),
            vias: ALL,
            note: "",
        },
        Spec {
            id: "http-keepalive",
            title: "Plain HTTP keep-alive, small GET, 64 connections",
            scheme: Scheme::Http,
            big: false,
            load: load(64, true, None),
            vias: ALL,
            note: "",
        },
        Spec {
            id: "https-h2",
            title: "HTTPS h2, 8 connections x 8 streams",
            scheme: Scheme::Https,
            big: false,
            load: load(8, true, Some(8)),
            vias: &[Via::Direct, Via::Cordon, Via::Mitmproxy],
            note: "Squid does not speak h2 to clients: not run.",
        },
        Spec {
            id: "https-1conn",
            title: "HTTPS keep-alive, 1 connection (latency)",
            scheme: Scheme::Https,
            big: false,
            load: load(1, true, None),
            vias: WITH_BATCHED,
            note: "",
        },
        Spec {
            id: "https-1mib",
            title: "HTTPS keep-alive, 1 MiB downloads, 16 connections",
            scheme: Scheme::Https,
            big: true,
            load: load(16, true, None),
            vias: ALL,
            note: "",
        },
    ]
}

#[derive(Serialize)]
pub struct RunResult {
    pub round: u32,
    pub figures: Figures,
    /// The proxy's CPU and peak RSS during this run (none for direct).
    pub usage: Option<Usage>,
}

#[derive(Serialize)]
pub struct ViaResult {
    pub via: Via,
    pub runs: Vec<RunResult>,
    /// Per figure, the median over rounds.
    pub median: Option<Figures>,
    pub usage: Option<Usage>,
    /// Per figure, the median over rounds of (this run / direct in the same round).
    pub ratio: Option<Figures>,
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
    let url = url(rig, spec);
    let mut results: Vec<ViaResult> = spec
        .vias
        .iter()
        .map(|&via| ViaResult {
            via,
            runs: vec![],
            median: None,
            usage: None,
            ratio: None,
            errors: vec![],
        })
        .collect();
    let mut note = spec.note.to_string();
    for round in 0..rounds {
        for r in results.iter_mut() {
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
            match run_one(rig, spec, &url, r.via) {
                Ok((figures, usage)) => r.runs.push(RunResult {
                    round,
                    figures,
                    usage,
                }),
                Err(e) => r.errors.push(format!("round {}: {e:#}", round + 1)),
            }
        }
    }
    let direct: Vec<(u32, Figures)> = results
        .iter()
        .find(|r| r.via == Via::Direct)
        .map(|r| r.runs.iter().map(|x| (x.round, x.figures)).collect())
        .unwrap_or_default();
    for r in results.iter_mut() {
        summarize(r, &direct);
    }
    if spec.big {
        note.push_str(" Cordon's daemon RSS before/after is in the memory section.");
    }
    ScenarioResult {
        id: spec.id,
        title: spec.title,
        url,
        load: describe(&spec.load),
        note: note.trim().to_string(),
        vias: results,
    }
}

fn url(rig: &Rig, spec: &Spec) -> String {
    let path = if spec.big { BIG_PATH } else { "/" };
    match spec.scheme {
        Scheme::Https => format!("https://localhost:{}{path}", rig.upstream.https),
        // A plain-HTTP Host name would have to be resolved through Cordon's DNS.
        Scheme::Http => format!("http://127.0.0.1:{}{path}", rig.upstream.http),
    }
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

fn run_one(
    rig: &Rig,
    spec: &Spec,
    url: &str,
    via: Via,
) -> anyhow::Result<(Figures, Option<Usage>)> {
    let agent_ca = rig.cordon(via).map(|c| c.agent_ca());
    let ca = match (via, spec.scheme) {
        (_, Scheme::Http) => None,
        (Via::Direct, _) => Some(rig.certs.upstream_ca.as_path()),
        (Via::Cordon | Via::CordonBatched, _) => agent_ca.as_deref(),
        _ => rig.peer(via).map(|p| p.client_ca.as_path()),
    };
    let target = Target {
        url,
        proxy: rig.peer(via).map(|p| p.port),
        ca,
    };
    let args = oha::args(&spec.load, &target);
    let mut cmd = match rig.cordon(via) {
        Some(c) => c.run_as(super::cordon::AGENT, &rig.oha),
        None => Command::new(&rig.oha),
    };
    cmd.args(&args);
    let meter = rig.proxy_pid(via).map(Meter::start);
    let result = oha::run(&mut cmd);
    let usage = meter.map(Meter::finish);
    Ok((result?, usage))
}

fn summarize(r: &mut ViaResult, direct: &[(u32, Figures)]) {
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
            peak_rss_mib: usages.iter().map(|u| u.peak_rss_mib).fold(0.0, f64::max),
        });
    }
    let pairs: Vec<(&Figures, &Figures)> = r
        .runs
        .iter()
        .filter_map(|x| {
            direct
                .iter()
                .find(|(round, _)| *round == x.round)
                .map(|(_, d)| (&x.figures, d))
        })
        .collect();
    if !pairs.is_empty() {
        let ratio =
            |f: fn(&Figures) -> f64| median(pairs.iter().map(|(a, d)| f(a) / f(d)).collect());
        r.ratio = Some(Figures {
            rps: ratio(|f| f.rps),
            p50_ms: ratio(|f| f.p50_ms),
            p99_ms: ratio(|f| f.p99_ms),
            failed: 0,
            ok: 0,
        });
    }
}
