//! `cargo xtask fuzz [TARGET] [--time 10m]`: builds the cargo-fuzz targets
//! of `fuzz/` on the pinned nightly and runs each (or one), niced, one
//! process per core at a time, on its committed corpus plus its regression
//! inputs. A crash, panic, hang or differential mismatch fails the command
//! and leaves the input in `fuzz/artifacts/<target>/`. `cargo xtask test`
//! runs every target for [`SMOKE_SECONDS`] the same way, built and run
//! beside the rest of the suite (`fuzz_smoke.rs`), keeping what it finds out
//! of the tree.
use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use anyhow::{Context, bail};
use clap::Args;

use crate::{
    fuzz_log::{Figures, figures, show_tail},
    fuzz_tool::{Build, cargo_fuzz, fuzz_env, seed, targets, toolchain_arg},
    sys::{run as exec, workspace_root},
    toolchain,
};

/// How long the test suite runs each target. Every run replays the target's whole corpus and
/// its regressions first (under two seconds for the slowest, policy_load and connector_load,
/// at about 800 inputs a second), which is what a smoke run is for; 20 s a
/// target put the suite within 2.5 minutes of its 25-minute bound (1,353 s in CI). The runs
/// now start once the build is done, beside the end-to-end tests, but a run still under way
/// when the tests end is waited for.
pub const SMOKE_SECONDS: u64 = 10;
/// One input taking longer than this is reported as a hang.
const HANG_SECONDS: u64 = 10;

/// Where a run writes the new inputs it finds (libFuzzer writes into the
/// first corpus directory it is given and only reads the others).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewInputs {
    /// Into the committed corpus: `cargo xtask fuzz` grows it, to be
    /// minimised (`--cmin`) and committed.
    Corpus,
    /// Into a fresh directory under `target/`: the test suite's smoke run
    /// leaves a clean checkout as clean as it found it.
    Scratch,
}

#[derive(Args)]
pub struct FuzzArgs {
    /// Only this target (`cargo xtask fuzz --list` names them).
    pub target: Option<String>,
    /// How long each target runs: `90s`, `10m`, `1h` (plain numbers are seconds).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub time: u64,
    /// Rebuild the seed corpora from the test fixtures into every corpus
    /// directory (an empty one is seeded on any run).
    #[arg(long)]
    pub seed: bool,
    /// Minimise each corpus after its run (`cargo fuzz cmin`), so what is
    /// committed stays small.
    #[arg(long)]
    pub cmin: bool,
    /// List the targets and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    toolchain::ensure_fuzz_tools()?;
    let targets = targets()?;
    if args.list {
        targets.iter().for_each(|t| println!("{t}"));
        return Ok(());
    }
    let selected: Vec<&String> = match &args.target {
        Some(name) => match targets.iter().find(|t| *t == name) {
            Some(t) => vec![t],
            None => bail!("no fuzz target `{name}`; there are: {}", targets.join(", ")),
        },
        None => targets.iter().collect(),
    };
    fuzz(&selected, args.time, args.seed, args.cmin)
}

fn fuzz(targets: &[&String], seconds: u64, reseed: bool, cmin: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    exec(cargo_fuzz().arg("build").args(Build::Long.args()))?;
    eprintln!(
        "xtask: fuzz targets built in {}s",
        started.elapsed().as_secs()
    );
    run_built(
        targets,
        Build::Long,
        seconds,
        reseed,
        cmin,
        NewInputs::Corpus,
        &AtomicBool::new(false),
    )
}

/// Runs `targets` (already built as `build`) for `seconds` each; once `stop`
/// is set, no further target starts and the call fails.
pub(crate) fn run_built(
    targets: &[&String],
    build: Build,
    seconds: u64,
    reseed: bool,
    cmin: bool,
    new_inputs: NewInputs,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    seed(targets, reseed)?;
    let table = run_all(targets, build, seconds, new_inputs, stop)?;
    if stop.load(Ordering::Relaxed) {
        bail!("the fuzz runs were stopped");
    }
    if cmin {
        for target in targets {
            exec(
                cargo_fuzz()
                    .arg("cmin")
                    .args(build.args())
                    .arg(target.as_str()),
            )?;
        }
    }
    eprintln!(
        "xtask: fuzzing done in {}s, no findings",
        started.elapsed().as_secs()
    );
    eprintln!(
        "{:<18} {:>11} {:>8} {:>7} {:>9} {:>7}",
        "target", "runs", "exec/s", "cov", "features", "corpus"
    );
    for (t, f) in table {
        eprintln!(
            "{t:<18} {:>11} {:>8} {:>7} {:>9} {:>7}",
            f.runs, f.exec_per_sec, f.cov, f.features, f.corpus
        );
    }
    Ok(())
}

/// Runs every target for `seconds`, one process per core at a time (each libFuzzer run is
/// single-threaded, so one at a time left a core idle for the whole smoke run). Every target
/// runs even after one has a finding; then the first finding is the error.
fn run_all<'t>(
    targets: &[&'t String],
    build: Build,
    seconds: u64,
    new_inputs: NewInputs,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<(&'t str, Figures)>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(targets.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, anyhow::Result<Figures>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(target) = targets.get(i) else {
                            return mine;
                        };
                        mine.push((i, run_one(target, build, seconds, new_inputs)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter()
        .map(|(i, figures)| Ok((targets[i].as_str(), figures?)))
        .collect()
}

/// Runs one target for `seconds` and reads its figures from the log; any
/// finding is an error naming the reproducer and showing the log's end.
fn run_one(
    target: &str,
    build: Build,
    seconds: u64,
    new_inputs: NewInputs,
) -> anyhow::Result<Figures> {
    let root = workspace_root();
    let corpus = root.join("fuzz/corpus").join(target);
    let regressions = root.join("fuzz/regressions").join(target);
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "19", "cargo", &toolchain_arg(), "fuzz", "run"])
        .args(build.args())
        .arg("--fuzz-dir")
        .arg(root.join("fuzz"))
        .arg(target);
    if new_inputs == NewInputs::Scratch {
        let scratch = root.join("target/fuzz-smoke").join(target);
        fresh_dir(&scratch)?;
        cmd.arg(&scratch);
    }
    cmd.arg(&corpus);
    if regressions.is_dir() {
        // Read, never written: the fixed findings run first every time.
        cmd.arg(&regressions);
    }
    cmd.arg("--").args([
        format!("-max_total_time={seconds}"),
        format!("-timeout={HANG_SECONDS}"),
        "-rss_limit_mb=2048".into(),
        "-jobs=1".into(),
        "-workers=1".into(),
        "-print_final_stats=1".into(),
    ]);
    eprintln!("xtask: fuzzing {target} for {seconds}s");
    // With -jobs, libFuzzer writes the run's output to fuzz-0.log in the
    // working directory, which is therefore one of the target's own.
    let logs = root.join("fuzz/target/logs").join(target);
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("fuzz-0.log");
    let _stale_log_may_be_absent = std::fs::remove_file(&log);
    // A temp dir of the run's own, emptied each time: a target that writes
    // files (policy_load) leaves nothing in the host's /tmp, since libFuzzer
    // ends the process without running its destructors.
    let tmp = logs.join("tmp");
    fresh_dir(&tmp)?;
    let status = fuzz_env(&mut cmd)
        .env("TMPDIR", &tmp)
        .current_dir(&logs)
        .status()
        .with_context(|| format!("starting {cmd:?}"))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        show_tail(target, &text);
        bail!(
            "fuzz target {target} found a crash, panic, hang or mismatch ({status}); the input is in {}, the log in {}",
            root.join("fuzz/artifacts").join(target).display(),
            log.display()
        );
    }
    Ok(figures(&text))
}

/// `dir`, empty: whatever an earlier run left there is removed.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("emptying {}", dir.display())),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number with s, m or h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("`{text}`: unknown unit `{other}` (s, m or h)")),
    };
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("20"), Ok(20));
        assert_eq!(parse_duration("20s"), Ok(20));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
