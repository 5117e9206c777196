//! `cargo xtask test`: lints, unit tests, then the privileged end-to-end
//! suite (real daemon, real eBPF, real cgroups), and beside them a short run
//! of every fuzz target (`fuzz_smoke.rs`). The end-to-end tests need root;
//! without it they are reported as SKIPPED, loudly, never as passed.
use anyhow::bail;
use clap::Args;

use crate::{
    fuzz_smoke,
    sys::{self, cargo, run as exec, workspace_root},
    toolchain,
};

#[derive(Args)]
pub struct TestArgs {
    /// Only run tests (unit and end-to-end) whose name contains this.
    #[arg(long, alias = "e2e-filter")]
    pub filter: Option<String>,
    /// Skip fmt and clippy (quicker local iterations).
    #[arg(long)]
    pub no_lint: bool,
    /// Skip the fuzz smoke run (quicker local iterations).
    #[arg(long)]
    pub no_fuzz: bool,
}

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    if !toolchain::is_ready() {
        toolchain::setup()?;
    }
    let root = workspace_root();
    // Started first, at the lowest priority, so the fuzz build and then its
    // runs take what the lints, the builds (one rustc on one core for much
    // of the time) and the tests (waiting on daemons) leave idle.
    let fuzz_smoke = if args.no_fuzz {
        None
    } else {
        Some(fuzz_smoke::Smoke::start()?)
    };
    // Every cargo call selects the same packages, so features unify the same
    // way and each dependency is compiled once, not once per selection.
    const SELECTION: [&str; 3] = ["--workspace", "--exclude", "agent-ebpf"];
    if !args.no_lint {
        exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
        exec(cargo().arg("clippy").args(SELECTION).args([
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The end-to-end tests drive the real `cordon` binary, so it is built first.
    exec(cargo().arg("build").args(SELECTION).arg("--bins"))?;

    // The package test (tests/tests/package_e2e.rs) installs this with
    // dpkg; it needs root like the rest of the privileged suite. It packs
    // the debug binary just built (see `package`). Packing is mostly one
    // core (stripping, compressing, lintian), so it runs while cargo builds
    // the tests, with the same selection as the run below (nothing is built
    // twice).
    let deb = std::thread::scope(|scope| {
        let deb = sys::is_root()
            .then(|| scope.spawn(|| crate::package::build(crate::package::Build::Dev)));
        let built = exec(
            cargo()
                .arg("test")
                .args(SELECTION)
                .args(["--no-fail-fast", "--no-run"]),
        );
        let deb = deb
            .map(|d| d.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .transpose();
        built.and(deb)
    })?;

    let skip_log = root.join("target/e2e-skipped.txt");
    let _ = std::fs::remove_file(&skip_log);
    if !sys::is_root() {
        eprintln!("{}", banner());
    }
    let mut tests = cargo();
    tests
        .arg("test")
        .args(SELECTION)
        .arg("--no-fail-fast")
        .arg("--")
        .args(args.filter.iter())
        .arg("--test-threads=2")
        .env("CORDON_BIN", root.join("target/debug/cordon"))
        .env("CORDON_E2E_SKIP_LOG", &skip_log)
        .envs(deb.iter().map(|d| ("CORDON_DEB", d)))
        .env("RUST_BACKTRACE", "1");
    exec(&mut tests)?;

    if let Some(smoke) = fuzz_smoke {
        // Every target briefly, on its committed corpus and regression
        // inputs: a finding fails the run like a failing test.
        let started = std::time::Instant::now();
        smoke.finish()?;
        eprintln!(
            "xtask: the fuzz smoke job ended {}s after the tests",
            started.elapsed().as_secs()
        );
    }

    let skipped = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let skipped: Vec<&str> = skipped.lines().filter(|l| !l.is_empty()).collect();
    if !skipped.is_empty() {
        eprintln!("{}", banner());
        eprintln!(
            "xtask: {} privileged end-to-end tests were SKIPPED (not root):",
            skipped.len()
        );
        for s in &skipped {
            eprintln!("  SKIPPED {s}");
        }
        if std::env::var_os("CI").is_some() {
            bail!("CI runs as root: skipped privileged tests count as a failure here");
        }
    }
    Ok(())
}

fn banner() -> String {
    let line = "!".repeat(78);
    format!(
        "{line}\n!! NOT ROOT: the privileged end-to-end tests (eBPF, cgroups, namespaces)\n!! will be SKIPPED. Run `sudo -E cargo xtask test` to run them.\n{line}"
    )
}
