//! One oha run: the command line for a load shape, and the figures read
//! back from `--output-format json` (latencies there are in seconds).
use std::{path::Path, process::Command};

use anyhow::{Context, bail};
use serde_json::Value;

/// The shape of the load, independent of where it is sent.
#[derive(Clone, Debug)]
pub struct Load {
    pub connections: u32,
    pub keepalive: bool,
    /// HTTP/2 with this many streams per connection.
    pub h2_streams: Option<u32>,
    pub secs: u32,
}

/// Where it is sent: the URL, an explicit proxy, the CA to trust, and
/// `--connect-to HOST:PORT:TARGET_HOST:TARGET_PORT` (the bare forwarder:
/// the URL's name and port stay what the client sends, the TCP connection
/// goes elsewhere).
pub struct Target<'a> {
    pub url: &'a str,
    pub proxy: Option<u16>,
    pub ca: Option<&'a Path>,
    pub connect_to: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Successful (2xx) responses per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests that failed or got a non-2xx answer.
    pub failed: u64,
    pub ok: u64,
}

/// oha's arguments (the program itself is added by the caller, plain or
/// behind `cordon run`).
pub fn args(load: &Load, t: &Target) -> Vec<String> {
    let mut a: Vec<String> = ["--no-tui", "--output-format", "json", "-z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(format!("{}s", load.secs));
    a.push("-c".into());
    a.push(load.connections.to_string());
    if !load.keepalive {
        a.push("--disable-keepalive".into());
    }
    if let Some(p) = load.h2_streams {
        a.extend(["--http2".into(), "-p".into(), p.to_string()]);
    }
    if let Some(port) = t.proxy {
        a.extend(["-x".into(), format!("http://127.0.0.1:{port}")]);
    }
    if let Some(ca) = t.ca {
        a.extend(["--cacert".into(), ca.display().to_string()]);
    }
    if let Some(c) = &t.connect_to {
        a.extend(["--connect-to".into(), c.clone()]);
    }
    a.push(t.url.to_string());
    a
}

/// Runs the prepared command (plain, or wrapped in `cordon run`) and reads
/// its figures. A run where nothing succeeded is an error naming the
/// failures oha saw.
pub fn run(cmd: &mut Command) -> anyhow::Result<Figures> {
    run_json(cmd).map(|(f, _)| f)
}

/// [`run`], also handing back oha's whole JSON (the mean latency, say).
pub fn run_json(cmd: &mut Command) -> anyhow::Result<(Figures, Value)> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "oha printed no JSON ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    })?;
    let f = parse(&v)?;
    if f.ok == 0 {
        bail!(
            "no request succeeded; status codes: {}; oha errors: {}",
            v.get("statusCodeDistribution")
                .map(Value::to_string)
                .unwrap_or_default(),
            v.get("errorDistribution")
                .map(Value::to_string)
                .unwrap_or_default()
        );
    }
    Ok((f, v))
}

pub fn parse(v: &Value) -> anyhow::Result<Figures> {
    let num = |path: &[&str]| -> Option<f64> {
        let mut cur = v;
        for p in path {
            cur = cur.get(*p)?;
        }
        cur.as_f64()
    };
    let total_secs = num(&["summary", "total"]).context("oha JSON has no summary.total")?;
    let mut ok = 0u64;
    let mut other = 0u64;
    if let Some(codes) = v.get("statusCodeDistribution").and_then(Value::as_object) {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                other += n;
            }
        }
    }
    let errors: u64 = v
        .get("errorDistribution")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                // Requests cut by the end of the run are not failures.
                .filter(|(k, _)| !k.contains("deadline"))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0);
    Ok(Figures {
        rps: ok as f64 / total_secs.max(1e-9),
        p50_ms: num(&["latencyPercentiles", "p50"]).unwrap_or(f64::NAN) * 1e3,
        p99_ms: num(&["latencyPercentiles", "p99"]).unwrap_or(f64::NAN) * 1e3,
        failed: other + errors,
        ok,
    })
}
