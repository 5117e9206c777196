//! What the bench needs, installed idempotently: oha into the project's
//! tools dir, nginx-light and squid-openssl from Debian (as root), mitmproxy
//! 12 in a venv under target/, and release builds of Cordon, the probe and
//! the criterion benches. A peer that cannot be installed is reported, not
//! fatal; nginx, oha and Cordon are required.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::sys::{self, cargo, have, output, run, workspace_root};

pub struct Tools {
    pub oha: PathBuf,
    pub cordon: PathBuf,
    pub probe: PathBuf,
    /// The bare forwarder; a failed build is reported, not fatal.
    pub forwarder: Result<PathBuf, String>,
    pub mitmdump: Result<PathBuf, String>,
    pub squid: Result<(), String>,
}

/// Where cargo puts build output for this invocation.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn all() -> anyhow::Result<Tools> {
    let debs = debian_packages();
    if !have("nginx") {
        bail!(
            "nginx is required for the upstream: {}",
            debs.as_ref()
                .err()
                .map(String::as_str)
                .unwrap_or("not found after install")
        );
    }
    let squid = match debs {
        Err(e) => Err(e),
        Ok(()) if !Path::new("/usr/lib/squid/security_file_certgen").exists() => {
            Err("squid-openssl is not installed (no security_file_certgen)".into())
        }
        Ok(()) => Ok(()),
    };
    let oha = oha()?;
    let mitmdump = mitmproxy().map_err(|e| format!("{e:#}"));
    if let Err(e) = &mitmdump {
        eprintln!("xtask: bench: mitmproxy unavailable: {e}");
    }
    let (cordon, probe) = cordon_and_probe()?;
    let release = target_dir().join("release");
    let forwarder = run(cargo().args([
        "build",
        "--release",
        "-p",
        "xtask",
        "--features",
        "forwarder",
        "--bin",
        "bench-forwarder",
    ]))
    .map(|()| release.join("bench-forwarder"))
    .map_err(|e| format!("building bench-forwarder: {e:#}"));
    Ok(Tools {
        oha,
        cordon,
        probe,
        forwarder,
        mitmdump,
        squid,
    })
}

fn debian_packages() -> Result<(), String> {
    let installed = |pkg: &str| {
        output(Command::new("dpkg-query").args(["-W", "-f", "${Status}", pkg]))
            .is_some_and(|s| s.contains("install ok installed"))
    };
    let missing: Vec<&str> = ["nginx-light", "squid-openssl"]
        .into_iter()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() || (have("nginx") && missing == ["nginx-light"]) {
        return Ok(());
    }
    if !sys::is_root() || !have("apt-get") {
        return Err(format!(
            "missing {} (needs root and apt-get)",
            missing.join(" ")
        ));
    }
    eprintln!("xtask: bench: installing {}", missing.join(" "));
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .map_err(|e| format!("{e:#}"))
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

pub fn oha() -> anyhow::Result<PathBuf> {
    let prefix = workspace_root().join(".tools");
    let bin = prefix.join("bin/oha");
    if output(Command::new(&bin).arg("--version")).is_some() {
        return Ok(bin);
    }
    eprintln!("xtask: bench: installing oha into {}", prefix.display());
    // Without --locked a dependency wants a newer rustc than the pinned one.
    run(cargo()
        .args(["install", "oha", "--locked", "--root"])
        .arg(&prefix))?;
    Ok(bin)
}

/// mitmproxy 12 needs Python >= 3.12: pyenv's 3.13 when present, else a
/// python3.13/python3.12 on PATH.
fn mitmproxy() -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join("target/bench/mitm-venv");
    let mitmdump = venv.join("bin/mitmdump");
    if output(Command::new(&mitmdump).arg("--version")).is_some_and(|v| v.contains("Mitmproxy: 12"))
    {
        return Ok(mitmdump);
    }
    let python = find_python().context("no Python >= 3.12 (mitmproxy 12 needs it)")?;
    eprintln!(
        "xtask: bench: installing mitmproxy 12 into {} with {}",
        venv.display(),
        python.display()
    );
    run(Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "-q", "mitmproxy>=12,<13"]))?;
    Ok(mitmdump)
}

fn find_python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/root/.pyenv/versions")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("3.13") || n.starts_with("3.12")
        })
        .map(|e| e.path().join("bin/python"))
        .collect();
    candidates.sort();
    candidates.reverse();
    candidates.extend(["python3.13", "python3.12"].map(PathBuf::from));
    candidates
        .into_iter()
        .find(|p| output(Command::new(p).arg("--version")).is_some())
}

/// Release builds of `cordon` and `bench-probe`: (cordon, probe).
pub fn cordon_and_probe() -> anyhow::Result<(PathBuf, PathBuf)> {
    crate::sys::build_release_cordon()?;
    run(cargo().args(["build", "--release", "-p", "xtask", "--bin", "bench-probe"]))?;
    let release = target_dir().join("release");
    Ok((release.join("cordon"), release.join("bench-probe")))
}
