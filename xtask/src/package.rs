//! `cargo xtask package`: the Debian package. The release binary writes its
//! own man pages, completions, unit and default config
//! (`cordon generate-assets`), cargo-deb packs them with the files listed
//! in agent-userspace/Cargo.toml, and lintian must find nothing above
//! info level (what it flags and we keep is justified in
//! agent-userspace/debian/lintian-overrides).
//!
//! The test suite packs the same files around the debug binary it has just
//! built for the end-to-end tests ([`Build::Dev`]): the package test checks
//! the packaging (contents, maintainer scripts, unit, purge), which the
//! optimiser does not change, and a second, whole-program-optimised build of
//! the daemon was a quarter of a clean suite's time. `cargo xtask package`,
//! what ships, always packs the release build.
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::sys::{cargo, run, workspace_root};
use crate::toolchain;

/// Where `cordon generate-assets` writes; agent-userspace/Cargo.toml's
/// `[package.metadata.deb]` reads from here.
const ASSETS: &str = "target/deb-assets";

/// Which build of the daemon the package holds.
#[derive(Clone, Copy)]
pub enum Build {
    /// What ships: the release profile, built here.
    Release,
    /// The test suite's: the debug binary the caller has already built.
    Dev,
}

impl Build {
    fn profile(self) -> &'static str {
        match self {
            Build::Release => "release",
            Build::Dev => "dev",
        }
    }

    /// Where cargo puts this profile's binaries.
    fn dir(self) -> &'static str {
        match self {
            Build::Release => "release",
            Build::Dev => "debug",
        }
    }
}

/// Builds (for `Build::Release`) and lints the package; returns its path.
pub fn build(build: Build) -> anyhow::Result<PathBuf> {
    toolchain::ensure_package_tools()?;
    let root = workspace_root();
    if let Build::Release = build {
        crate::sys::build_release_cordon()?;
    }
    let bin = root.join("target").join(build.dir()).join("cordon");
    if !bin.exists() {
        bail!("{} is not built", bin.display());
    }
    let assets = root.join(ASSETS);
    if assets.exists() {
        std::fs::remove_dir_all(&assets)
            .with_context(|| format!("clearing {}", assets.display()))?;
    }
    run(Command::new(&bin)
        .args(["generate-assets", "--out"])
        .arg(&assets))?;
    let out_dir = match build {
        Build::Release => root.join("target/debian"),
        // Apart, so a test package is never mistaken for the one to ship.
        Build::Dev => root.join("target/debian/test-build"),
    };
    std::fs::create_dir_all(&out_dir)?;
    let out = cargo()
        // The release profile keeps line tables for backtraces; the
        // packaged binary is stripped (lintian: unstripped-binary-or-object).
        .args([
            "deb",
            "-p",
            "agent-userspace",
            "--profile",
            build.profile(),
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
