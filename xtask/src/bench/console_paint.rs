//! Scenario 11: first paint of the web console's live audit view with
//! 10,000 records in the trail, in the real browser (Chromium from Debian,
//! driven by Playwright; see `crate::browser`). A daemon of its own with
//! `[console]` on; an agent's refused connects fill its trail (each is a
//! recorded decision); then the view is loaded and timed several times.
use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{
    certs::Certs,
    cordon::{Audit, Cordon},
    free_port,
    goals::{self, Goal},
    median,
};

/// The trail the goal names.
pub const RECORDS: u64 = 10_000;
/// Page loads timed.
const LOADS: u32 = 7;
const SCRIPT: &str = include_str!("console_paint.py");
const AGENT: &str = "bench-console";
/// The connect loop fills the trail at thousands of connects a second: far past the
/// per-agent connection rate cap, which would record one burst instead of each connect.
const POLICY: &str = "agents = [\"bench-console\"]\ndefault = \"deny\"\n\n[caps]\nconnections = 1000000\nconnections_per_second = 1000000\n";

#[derive(Serialize, Default, Clone)]
pub struct ConsolePaint {
    /// Records in the trail when the view was loaded.
    pub records: u64,
    /// Rows the view drew (its backlog).
    pub rows: u64,
    pub paint_ms: Vec<f64>,
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: Vec<String>,
}

pub fn run(cordon: &Path, probe: &Path, dir: &Path, certs: &Certs) -> ConsolePaint {
    eprintln!("xtask: bench: console first paint ({RECORDS} records)");
    match measure(cordon, probe, dir, certs) {
        Ok(r) => r,
        Err(e) => ConsolePaint {
            errors: vec![format!("{e:#}")],
            ..ConsolePaint::default()
        },
    }
}

fn measure(cordon: &Path, probe: &Path, dir: &Path, certs: &Certs) -> anyhow::Result<ConsolePaint> {
    if !crate::browser::installed() {
        bail!("no Chromium or Playwright (cargo xtask setup installs them)");
    }
    let policies = dir.join("console-policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("bench.toml"), POLICY)?;
    let port = free_port()?;
    let toml = format!(
        "{}[console]\nlisten = \"127.0.0.1:{port}\"\n",
        Audit::Strict.toml()
    );
    let c = Cordon::start_with("cordon-console", cordon, dir, certs, &policies, &toml)?;
    let token = cli_text(&c, &["console", "token"])?;
    let mut records = last_seq(&c)?;
    for _ in 0..3 {
        if records >= RECORDS {
            break;
        }
        let want = (RECORDS - records + 100).to_string();
        // Each connect is decided, refused and recorded by the proxy.
        let out = c
            .run_as(AGENT, probe)
            .args(["connect-loop", "127.0.0.1:9", &want, "60"])
            .stdin(Stdio::null())
            .output()
            .context("running the connect loop in an agent")?;
        if !out.status.success() {
            bail!(
                "connect loop: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        records = last_seq(&c)?;
    }
    if records < RECORDS {
        bail!("the trail holds {records} records, not {RECORDS}");
    }
    let script = dir.join("console_paint.py");
    std::fs::write(&script, SCRIPT)?;
    let out = Command::new(crate::browser::console_venv().join("bin/python"))
        .arg(&script)
        .args([
            &format!("http://127.0.0.1:{port}"),
            &token,
            &LOADS.to_string(),
        ])
        .env("CORDON_CHROMIUM", crate::browser::CHROMIUM)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .output()
        .context("running the browser")?;
    if !out.status.success() {
        bail!("browser: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("browser output")?;
    let paint_ms: Vec<f64> = v["paint_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    Ok(ConsolePaint {
        records,
        rows: v["rows"].as_u64().unwrap_or(0),
        median_ms: (!paint_ms.is_empty()).then(|| median(paint_ms.clone())),
        max_ms: paint_ms.iter().copied().reduce(f64::max),
        paint_ms,
        errors: Vec::new(),
    })
}

/// The goal, judged on the median load (the max beside it).
pub fn goal(r: &ConsolePaint) -> Goal {
    let measured = r.median_ms.filter(|_| r.records >= RECORDS).map(|m| {
        let max = r.max_ms.unwrap_or(f64::NAN);
        (
            m,
            format!(
                "{m:.0} ms median, {max:.0} ms max, {} loads",
                r.paint_ms.len()
            ),
        )
    });
    goals::goal(
        "console: first paint of the live audit view <= 300 ms with 10,000 records",
        measured,
        |v| v <= 300.0,
    )
}

fn cli_text(c: &Cordon, args: &[&str]) -> anyhow::Result<String> {
    let out = c.cli(args)?;
    if !out.status.success() {
        bail!(
            "cordon {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The newest record's seq (records are dense from 1).
fn last_seq(c: &Cordon) -> anyhow::Result<u64> {
    let text = cli_text(c, &["audit", "tail", "-n", "1", "--json"])?;
    if text.is_empty() {
        return Ok(0);
    }
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}"))
        .context("cordon audit tail --json")?;
    Ok(v["seq"].as_u64().unwrap_or(0))
}
