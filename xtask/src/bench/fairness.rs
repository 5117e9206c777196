//! Scenario: fair under abuse. A daemon of its own, at its default caps
//! (no `[caps]` anywhere). Agent `bench-calm` sends HTTPS requests, a new
//! connection each, 100 a second (`oha --disable-keepalive -c 2 -q 100`), alone and then while
//! agent `bench-flood` floods the same daemon: thousands of idle
//! connections, slow-head connections (a request head that never ends),
//! garbage connections (random bytes), and a keep-alive request loop. The
//! calm agent's p50/p99 under the flood are compared with its own unloaded
//! figures from the same run, and the daemon's RSS is sampled throughout.
//! Goals: loaded p99 within 2x of unloaded p99; peak RSS within the bound
//! the caps set (idle RSS + the connection cap x the per-connection worst
//! case of docs/config.md).
use std::{
    io::{Read, Write},
    path::Path,
    process::Stdio,
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
    proc::{Guard, Meter},
    upstream::Upstream,
};

const CALM: &str = "bench-calm";
const FLOOD: &str = "bench-flood";
/// The calm agent's requests per second (each on a new connection): half
/// its default cap of 200 new connections a second.
const CALM_RPS: u32 = 100;
/// Seconds of each calm measurement.
const SECS: u32 = 8;
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

#[derive(Serialize, Default, Clone)]
pub struct Fairness {
    pub unloaded: Option<oha::Figures>,
    pub loaded: Option<oha::Figures>,
    pub p50_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
    pub rss_idle_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_bound_mib: f64,
    pub daemon_cores: f64,
    /// What the flooder saw (opened, refused, requests...).
    pub flood: serde_json::Value,
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
    let ca = daemon.agent_ca();
    let calm = |what: &str| -> anyhow::Result<oha::Figures> {
        let load = oha::Load {
            connections: 2,
            keepalive: false,
            h2_streams: None,
            secs: SECS,
        };
        let target = oha::Target {
            url: &url,
            proxy: None,
            ca: Some(&ca),
            connect_to: None,
        };
        // A fixed offered load, well under the calm agent's own rate cap:
        // latency at a steady rate, not a saturated queue.
        let mut args = oha::args(&load, &target);
        let url_at = args.len() - 1;
        args.splice(url_at..url_at, ["-q".to_string(), CALM_RPS.to_string()]);
        let mut cmd = daemon.run_as(CALM, oha_bin);
        cmd.args(args);
        oha::run(&mut cmd).with_context(|| format!("the calm agent, {what}"))
    };
    // Warm the CA's leaf cache and the pools, then measure alone.
    calm("warming up")?;
    std::thread::sleep(Duration::from_secs(1));
    f.rss_idle_mib = rss_mib(pid);
    f.rss_bound_mib = f.rss_idle_mib + CAP_CONNECTIONS * WORST_KIB_PER_CONNECTION / 1024.0;
    let unloaded = calm("unloaded")?;
    f.unloaded = Some(unloaded);

    let python = Path::new("/usr/bin/python3");
    let mut cmd = daemon.run_as(FLOOD, python);
    cmd.args(["-c", FLOODER, &up.http.to_string(), &FLOOD_SECS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut flood = Guard::spawn("fairness flooder", &mut cmd)?;
    let meter = Meter::start(pid);
    std::thread::sleep(Duration::from_secs(3));
    let loaded = calm("under the flood");
    let usage = meter.finish();
    f.rss_peak_mib = usage.peak_rss_mib;
    f.daemon_cores = usage.cores;
    let mut out = String::new();
    if let Some(mut stdout) = flood.child_mut().and_then(|c| c.stdout.take()) {
        stdout.read_to_string(&mut out)?;
    }
    flood.wait_exit(Duration::from_secs(10));
    flood.stop();
    f.flood = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::String(out));
    let loaded = loaded?;
    f.loaded = Some(loaded);
    f.p50_ratio = Some(loaded.p50_ms / unloaded.p50_ms);
    f.p99_ratio = Some(loaded.p99_ms / unloaded.p99_ms);
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
                "{r:.2}x (p99 {:.1} ms loaded / {:.1} ms alone; p50 {:.1} / {:.1} ms)",
                l.p99_ms, u.p99_ms, l.p50_ms, u.p50_ms
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
    let mut s = String::from(
        "## Fair under abuse (`fairness`)\n\n\
         A daemon of its own at its default caps. Agent `bench-calm` runs `oha --disable-keepalive -c 2 -q 100` (HTTPS, a new \
         connection per request, 100 a second) for 8 s alone, then for 8 s while agent `bench-flood` opens up to 3,000 idle \
         connections, 1,000 slow-head connections (a head that never ends), garbage connections (random bytes) and a \
         keep-alive request loop, all through the same daemon. Ratios are loaded / unloaded from the same run.\n\n",
    );
    if !f.errors.is_empty() {
        s.push_str(&format!("**Failed**: {}\n\n", f.errors.join("; ")));
    }
    if let (Some(u), Some(l)) = (f.unloaded, f.loaded) {
        s.push_str("| | p50 ms | p99 ms | req/s |\n|---|---|---|---|\n");
        s.push_str(&format!(
            "| calm agent alone | {:.1} | {:.1} | {:.0} |\n",
            u.p50_ms, u.p99_ms, u.rps
        ));
        s.push_str(&format!(
            "| calm agent under the flood | {:.1} | {:.1} | {:.0} |\n\n",
            l.p50_ms, l.p99_ms, l.rps
        ));
    }
    s.push_str(&format!(
        "p50 ratio {}, p99 ratio {}. Daemon RSS idle {:.0} MiB, peak {:.0} MiB under the flood (bound {:.0} MiB); \
         daemon CPU {:.2} cores. Flooder: `{}`. Cap refusals: {}. `limit.hit` records for the flooder: {}.\n\n",
        f.p50_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        f.p99_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        f.rss_idle_mib,
        f.rss_peak_mib,
        f.rss_bound_mib,
        f.daemon_cores,
        f.flood,
        if f.cap_refusals.is_empty() {
            "none".to_string()
        } else {
            f.cap_refusals.join(", ")
        },
        f.cap_records
    ));
    s
}
