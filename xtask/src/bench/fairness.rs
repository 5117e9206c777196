//! Scenario: fair under abuse. A daemon of its own, at its default caps
//! (no `[caps]` anywhere). Agent `bench-calm` sends HTTPS requests, a new
//! connection each, 100 a second (`oha --disable-keepalive -c 2 -q 100`), alone and then while
//! agent `bench-flood` floods the same daemon: thousands of idle
//! connections, slow-head connections (a request head that never ends),
//! garbage connections (random bytes), and a keep-alive request loop. The
//! calm agent's p50/p99 under the flood are compared with its own unloaded
//! figures from the same round, and the daemon's RSS is sampled throughout.
//! A p99 of 800 requests is their 8th slowest, so one round's ratio swings
//! with a single scheduling hiccup on either side: the scenario runs
//! [`ROUNDS`] rounds (alone, then under a fresh flood) and judges the
//! median round's ratio, reporting every round.
//! Goals: loaded p99 within 2x of unloaded p99; peak RSS within the bound
//! the caps set (idle RSS + the connection cap x the per-connection worst
//! case of docs/config.md).
use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{
    Results,
    certs::Certs,
    cordon::Cordon,
    free_port,
    goals::{self, Goal},
    idle::rss_mib,
    oha,
    proc::{Guard, Meter, Usage},
    upstream::Upstream,
};

const CALM: &str = "bench-calm";
const FLOOD: &str = "bench-flood";
/// The calm agent's requests per second (each on a new connection): half
/// its default cap of 200 new connections a second.
const CALM_RPS: u32 = 100;
/// Seconds of each calm measurement.
const SECS: u32 = 8;
/// Rounds of (alone, under a flood); the goal takes the median round. Five,
/// not three: single rounds of the same build ranged from 1.5x to 3.6x, and
/// a median of three still moved across the goal between runs.
const ROUNDS: usize = 5;
/// How long the flood runs: a ramp, the loaded measurement, a margin.
const FLOOD_SECS: u32 = SECS + 6;
/// The daemon's default per-agent connection cap (`config/caps.rs`) and
/// the per-connection worst case the docs derive (head buffers, TLS).
const CAP_CONNECTIONS: f64 = 1024.0;
const WORST_KIB_PER_CONNECTION: f64 = 256.0;

const POLICY: &str = r#"agents = ["bench-calm", "bench-flood"]
default = "deny"

[[rule]]
id = "bench-loopback"
action = "tcp.connect"
cidrs = ["127.0.0.1/32"]
decision = "allow"

[[rule]]
id = "bench-http"
action = "http.request"
decision = "allow"
"#;

const FLOODER: &str = include_str!("fairness_flood.py");

/// One round: the calm agent alone, then under a fresh flood.
#[derive(Serialize, Clone)]
pub struct Round {
    pub unloaded: oha::Figures,
    pub loaded: oha::Figures,
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    pub rss_peak_mib: f64,
    pub daemon_cores: f64,
    /// What the flooder saw (opened, refused, requests...).
    pub flood: serde_json::Value,
}

#[derive(Serialize, Default, Clone)]
pub struct Fairness {
    pub rounds: Vec<Round>,
    /// The median round (by p99 ratio), which the goal judges.
    pub unloaded: Option<oha::Figures>,
    pub loaded: Option<oha::Figures>,
    pub p50_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
    pub rss_idle_mib: f64,
    /// The highest over all rounds.
    pub rss_peak_mib: f64,
    pub rss_bound_mib: f64,
    /// The calm client alone and under the flood with no Cordon at all.
    pub direct: Option<(oha::Figures, oha::Figures)>,
    /// `cordon_cap_refusals_total` lines for the flooding agent.
    pub cap_refusals: Vec<String>,
    /// `limit.hit` records in the trail: bursts, not connections.
    pub cap_records: u64,
    pub errors: Vec<String>,
}

pub fn run(cordon: &Path, oha_bin: &Path, dir: &Path, certs: &Certs, up: &Upstream) -> Fairness {
    eprintln!("xtask: bench: fairness (one agent floods, another is measured)");
    let mut f = Fairness::default();
    if let Err(e) = measure(cordon, oha_bin, dir, certs, up, &mut f) {
        f.errors.push(format!("{e:#}"));
    }
    f
}

fn measure(
    bin: &Path,
    oha_bin: &Path,
    dir: &Path,
    certs: &Certs,
    up: &Upstream,
    f: &mut Fairness,
) -> anyhow::Result<()> {
    let policies = dir.join("fairness-policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("bench.toml"), POLICY)?;
    let metrics = free_port()?;
    let toml = format!("metrics_addr = \"127.0.0.1:{metrics}\"\n");
    let daemon = Cordon::start_with("cordon-fairness", bin, dir, certs, &policies, &toml)?;
    let pid = daemon.pid();
    let url = format!("https://localhost:{}/", up.https);
    let agent_ca = daemon.agent_ca();
    let calm = |via: Via, what: &str| -> anyhow::Result<oha::Figures> {
        let load = oha::Load {
            connections: 2,
            keepalive: false,
            h2_streams: None,
            secs: SECS,
        };
        let target = oha::Target {
            url: &url,
            proxy: None,
            ca: Some(match via {
                Via::Cordon(_) => &agent_ca,
                Via::Direct => &certs.upstream_ca,
            }),
            connect_to: None,
        };
        // A fixed offered load, well under the calm agent's own rate cap:
        // latency at a steady rate, not a saturated queue.
        let mut args = oha::args(&load, &target);
        let url_at = args.len() - 1;
        args.splice(url_at..url_at, ["-q".to_string(), CALM_RPS.to_string()]);
        let mut cmd = via.command(CALM, oha_bin);
        cmd.args(args);
        oha::run(&mut cmd).with_context(|| format!("the calm agent, {what}"))
    };
    // Warm the CA's leaf cache and the pools.
    calm(Via::Cordon(&daemon), "warming up")?;
    std::thread::sleep(Duration::from_secs(1));
    f.rss_idle_mib = rss_mib(pid);
    f.rss_bound_mib = f.rss_idle_mib + CAP_CONNECTIONS * WORST_KIB_PER_CONNECTION / 1024.0;
    // The host's own share: the same two loads with no Cordon in between.
    let alone = calm(Via::Direct, "without Cordon, alone")?;
    let (flooded, _, _) = under_flood(Via::Direct, up, || {
        calm(Via::Direct, "without Cordon, under the flood")
    })?;
    f.direct = Some((alone, flooded));
    std::thread::sleep(Duration::from_secs(2));
    for round in 1..=ROUNDS {
        let via = Via::Cordon(&daemon);
        let unloaded = calm(via, &format!("alone, round {round}"))?;
        let (loaded, usage, flood) = under_flood(via, up, || {
            calm(via, &format!("under the flood, round {round}"))
        })?;
        let usage = usage.unwrap_or_default();
        f.rss_peak_mib = f.rss_peak_mib.max(usage.peak_rss_mib);
        f.rounds.push(Round {
            unloaded,
            loaded,
            p50_ratio: loaded.p50_ms / unloaded.p50_ms,
            p99_ratio: loaded.p99_ms / unloaded.p99_ms,
            rss_peak_mib: usage.peak_rss_mib,
            daemon_cores: usage.cores,
            flood,
        });
        // The flood's connections are closed; let the daemon settle before
        // the next round measures the calm agent alone.
        std::thread::sleep(Duration::from_secs(2));
    }
    let median = median_round(&f.rounds).context("no round finished")?;
    f.unloaded = Some(median.unloaded);
    f.loaded = Some(median.loaded);
    f.p50_ratio = Some(median.p50_ratio);
    f.p99_ratio = Some(median.p99_ratio);
    // Bursts end 2 s after their last refusal; summaries are written each second.
    std::thread::sleep(Duration::from_secs(4));
    f.cap_refusals = scrape(metrics)?
        .lines()
        .filter(|l| l.starts_with("cordon_cap_") && l.contains(FLOOD))
        .map(str::to_string)
        .collect();
    f.cap_records = count_cap_records(&daemon)?;
    Ok(())
}

/// How the two loads reach the upstream: as agents through the daemon, or
/// straight (the host's own share of the slowdown).
#[derive(Clone, Copy)]
enum Via<'a> {
    Cordon(&'a Cordon),
    Direct,
}

impl Via<'_> {
    fn command(self, agent: &str, program: &Path) -> Command {
        match self {
            Via::Cordon(daemon) => daemon.run_as(agent, program),
            Via::Direct => Command::new(program),
        }
    }
}

/// Runs `measure` while `bench-flood` floods (through the daemon, or
/// straight at the upstream); returns its figures, the daemon's usage
/// meanwhile and what the flooder reported.
fn under_flood(
    via: Via,
    up: &Upstream,
    measure: impl FnOnce() -> anyhow::Result<oha::Figures>,
) -> anyhow::Result<(oha::Figures, Option<Usage>, serde_json::Value)> {
    let python = Path::new("/usr/bin/python3");
    let mut cmd = via.command(FLOOD, python);
    cmd.args(["-c", FLOODER, &up.http.to_string(), &FLOOD_SECS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut flood = Guard::spawn("fairness flooder", &mut cmd)?;
    let meter = match via {
        Via::Cordon(daemon) => Some(Meter::start(daemon.pid())),
        Via::Direct => None,
    };
    std::thread::sleep(Duration::from_secs(3));
    let loaded = measure();
    let usage = meter.map(Meter::finish);
    let mut out = String::new();
    if let Some(mut stdout) = flood.child_mut().and_then(|c| c.stdout.take()) {
        stdout.read_to_string(&mut out)?;
    }
    flood.wait_exit(Duration::from_secs(10));
    flood.stop();
    let seen = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::String(out));
    Ok((loaded?, usage, seen))
}

/// The round whose p99 ratio is the median (the upper one of an even count).
fn median_round(rounds: &[Round]) -> Option<&Round> {
    let mut sorted: Vec<&Round> = rounds.iter().collect();
    sorted.sort_by(|a, b| a.p99_ratio.total_cmp(&b.p99_ratio));
    sorted.get(sorted.len() / 2).copied()
}

/// GET /metrics over a plain socket (no HTTP client in xtask).
fn scrape(port: u16) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// `limit.hit` records of the flooding agent, read with `cordon audit export`.
fn count_cap_records(daemon: &Cordon) -> anyhow::Result<u64> {
    let out = daemon.cli(&["audit", "export", "--format", "jsonl"])?;
    if !out.status.success() {
        bail!(
            "cordon audit export: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "limit.hit" && r["agent"] == FLOOD)
        .count() as u64)
}

pub fn goals(f: &Fairness) -> Vec<Goal> {
    let p99 = f.p99_ratio.map(|r| {
        let (u, l) = (f.unloaded.unwrap_or_default(), f.loaded.unwrap_or_default());
        (
            r,
            format!(
                "{r:.2}x, the median of {} rounds (p99 {:.1} ms loaded / {:.1} ms alone; p50 {:.1} / {:.1} ms)",
                f.rounds.len(),
                l.p99_ms,
                u.p99_ms,
                l.p50_ms,
                u.p50_ms
            ),
        )
    });
    let rss = (f.rss_peak_mib > 0.0).then(|| {
        (
            f.rss_peak_mib,
            format!(
                "peak {:.0} MiB (idle {:.0} MiB, bound {:.0} MiB)",
                f.rss_peak_mib, f.rss_idle_mib, f.rss_bound_mib
            ),
        )
    });
    let bound = f.rss_bound_mib;
    vec![
        goals::goal(
            "Fairness: a second agent's p99 under a flood within 2x of its unloaded p99",
            p99,
            |r| r <= 2.0,
        ),
        goals::goal(
            "Fairness: the daemon's RSS under the flood within the bound its caps set",
            rss,
            move |v| v <= bound,
        ),
    ]
}

/// The REPORT.md section.
pub fn section(r: &Results) -> String {
    let f = &r.fairness;
    let mut s = format!(
        "## Fair under abuse (`fairness`)\n\n\
         A daemon of its own at its default caps. Agent `bench-calm` runs `oha --disable-keepalive -c 2 -q 100` (HTTPS, a new \
         connection per request, 100 a second) for {SECS} s alone, then for {SECS} s while agent `bench-flood` opens up to 3,000 idle \
         connections, 1,000 slow-head connections (a head that never ends), garbage connections (random bytes) and a \
         keep-alive request loop, all through the same daemon. {ROUNDS} rounds, each with a fresh flood; ratios are loaded / \
         alone within a round, and the goal judges the median round (a p99 of 800 requests is their 8th slowest, so one \
         round swings with a single hiccup on either side).\n\n",
    );
    if !f.errors.is_empty() {
        s.push_str(&format!("**Failed**: {}\n\n", f.errors.join("; ")));
    }
    if !f.rounds.is_empty() {
        s.push_str(
            "| round | alone p50 / p99 ms | under the flood p50 / p99 ms | p99 ratio | req/s alone / flood | daemon CPU (cores) | peak RSS MiB | flooder |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for (i, rd) in f.rounds.iter().enumerate() {
            let (u, l) = (rd.unloaded, rd.loaded);
            s.push_str(&format!(
                "| {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2}x | {:.0} / {:.0} | {:.2} | {:.0} | `{}` |\n",
                i + 1,
                u.p50_ms,
                u.p99_ms,
                l.p50_ms,
                l.p99_ms,
                rd.p99_ratio,
                u.rps,
                l.rps,
                rd.daemon_cores,
                rd.rss_peak_mib,
                rd.flood
            ));
        }
        s.push('\n');
    }
    if let Some((alone, flooded)) = f.direct {
        s.push_str(&format!(
            "Without Cordon (the same calm client and flooder, straight at the upstream, as root): p50 / p99 {:.1} / {:.1} ms \
             alone, {:.1} / {:.1} ms under the flood, a p99 ratio of {:.2}x: the share of the slowdown that is the host's.\n\n",
            alone.p50_ms,
            alone.p99_ms,
            flooded.p50_ms,
            flooded.p99_ms,
            flooded.p99_ms / alone.p99_ms
        ));
    }
    s.push_str(&format!(
        "Median round: p50 ratio {}, p99 ratio {}. Daemon RSS idle {:.0} MiB, peak {:.0} MiB under the floods (bound {:.0} MiB). \
         Cap refusals over all rounds: {}. `limit.hit` records for the flooder: {}.\n\n",
        f.p50_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        f.p99_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        f.rss_idle_mib,
        f.rss_peak_mib,
        f.rss_bound_mib,
        if f.cap_refusals.is_empty() {
            "none".to_string()
        } else {
            f.cap_refusals.join(", ")
        },
        f.cap_records
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(p99_ratio: f64) -> Round {
        Round {
            unloaded: oha::Figures::default(),
            loaded: oha::Figures::default(),
            p50_ratio: 1.0,
            p99_ratio,
            rss_peak_mib: 0.0,
            daemon_cores: 0.0,
            flood: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_median_round_is_the_middle_ratio_not_the_best() {
        let rounds = [round(2.4), round(1.1), round(1.9)];
        assert_eq!(median_round(&rounds).map(|r| r.p99_ratio), Some(1.9));
        assert_eq!(median_round(&rounds[..2]).map(|r| r.p99_ratio), Some(2.4));
        assert!(median_round(&[]).is_none());
    }
}
