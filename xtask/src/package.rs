//! `cargo xtask package`: the Debian package. The release binary writes its
//! own man pages, completions, unit and default config
//! (`cordon generate-assets`), cargo-deb packs them with the files listed
//! in agent-userspace/Cargo.toml, and lintian must find nothing above
//! info level (what it flags and we keep is justified in
//! agent-userspace/debian/lintian-overrides).
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::sys::{cargo, run, workspace_root};
use crate::toolchain;

/// Where `cordon generate-assets` writes; agent-userspace/Cargo.toml's
/// `[package.metadata.deb]` reads from here.
const ASSETS: &str = "target/deb-assets";

/// Builds and lints the package; returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    toolchain::ensure_package_tools()?;
    let root = workspace_root();
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "agent-userspace",
        "--bin",
        "cordon",
    ]))?;
    let assets = root.join(ASSETS);
    if assets.exists() {
        std::fs::remove_dir_all(&assets)
            .with_context(|| format!("clearing {}", assets.display()))?;
    }
    run(Command::new(root.join("target/release/cordon"))
        .args(["generate-assets", "--out"])
        .arg(&assets))?;
    let out_dir = root.join("target/debian");
    std::fs::create_dir_all(&out_dir)?;
    let out = cargo()
        // The release profile keeps line tables for backtraces; the
        // packaged binary is stripped (lintian: unstripped-binary-or-object).
        .args([
            "deb",
            "-p",
            "agent-userspace",
            "--no-build",
            "--strip",
            "--output",
        ])
        .arg(&out_dir)
        .output()
        .context("running cargo deb (cargo xtask setup installs it)")?;
    if !out.status.success() {
        bail!(
            "cargo deb failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // cargo-deb prints the path of the package it wrote as its last line.
    let deb = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb printed no package path")?;
    lint(&deb)?;
    eprintln!("xtask: built and linted {}", deb.display());
    Ok(deb)
}

/// lintian with every tag shown; any warning or error fails.
fn lint(deb: &std::path::Path) -> anyhow::Result<()> {
    run(Command::new("lintian")
        .args([
            "--fail-on",
            "error,warning",
            "--display-info",
            "--tag-display-limit",
            "0",
        ])
        .arg(deb))
    .context("lintian found problems in the package (see above)")
}
