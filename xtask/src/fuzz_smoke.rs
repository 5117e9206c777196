//! `cargo xtask test`'s fuzz smoke job: the targets' build, then every
//! target's short run, both beside the rest of the suite.
//!
//! The build starts before the lints. The builds are one rustc on one core
//! for much of their time, and the end-to-end tests leave much of the two
//! cores idle while they wait on daemons and upstreams; niced and in the
//! idle I/O class, the build takes what they leave. The runs start as soon
//! as it is done, niced too, often while the end-to-end tests still run, so
//! the suite no longer waits for them after its last test.
//!
//! Dropped unfinished (something before it failed), the job stops: the
//! build is killed and no further run starts.
use std::{
    fs::File,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    fuzz::{self, NewInputs, SMOKE_SECONDS},
    fuzz_log, fuzz_tool,
    sys::workspace_root,
    toolchain,
};

/// How often the job looks whether it is to stop while the build runs.
const POLL: Duration = Duration::from_millis(200);

pub struct Smoke {
    stop: Arc<AtomicBool>,
    job: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Smoke {
    pub fn start() -> anyhow::Result<Smoke> {
        toolchain::ensure_fuzz_tools()?;
        let target = workspace_root().join("target");
        std::fs::create_dir_all(&target)?;
        let log = target.join("fuzz-build.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new("nice");
        cmd.args([
            "-n",
            "19",
            "ionice",
            "-c",
            "3",
            "cargo",
            &fuzz_tool::toolchain_arg(),
        ])
        .args(["fuzz", "build"])
        .args(fuzz_tool::Build::Smoke.args())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
        let build = fuzz_tool::fuzz_env(&mut cmd)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        eprintln!(
            "xtask: building the fuzz targets in the background, then running each for {SMOKE_SECONDS}s (build log: {})",
            log.display()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let job_stop = stop.clone();
        let job = std::thread::Builder::new()
            .name("fuzz-smoke".into())
            .spawn(move || job(build, &log, &job_stop))
            .context("starting the fuzz smoke job")?;
        Ok(Smoke {
            stop,
            job: Some(job),
        })
    }

    /// Waits for the job; a failed build or a finding is the error.
    pub fn finish(mut self) -> anyhow::Result<()> {
        match self.job.take() {
            Some(job) => job
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Ok(()),
        }
    }
}

impl Drop for Smoke {
    fn drop(&mut self) {
        // Only when `finish` did not run: the suite is failing, and the job's
        // result no longer matters, only that it stops. A run under way ends
        // within its SMOKE_SECONDS.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            drop(job.join());
        }
    }
}

/// Kills the build and reaps it; it is being given up, so how it ends
/// does not matter.
fn stop_build(build: &mut Child) {
    drop(build.kill());
    drop(build.wait());
}

fn job(mut build: Child, log: &std::path::Path, stop: &AtomicBool) -> anyhow::Result<()> {
    let started = Instant::now();
    let status = loop {
        if stop.load(Ordering::Relaxed) {
            stop_build(&mut build);
            bail!("the fuzz build was stopped");
        }
        match build.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                // Not left building beside a suite that has moved on.
                stop_build(&mut build);
                return Err(e).context("waiting for the fuzz build");
            }
        }
    };
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        fuzz_log::show_tail("fuzz build", &text);
        bail!(
            "building the fuzz targets failed ({status}); the log is {}",
            log.display()
        );
    }
    eprintln!(
        "xtask: fuzz targets built ({}s after the build started); running each for {SMOKE_SECONDS}s",
        started.elapsed().as_secs()
    );
    let targets = fuzz_tool::targets()?;
    let targets: Vec<&String> = targets.iter().collect();
    fuzz::run_built(
        &targets,
        fuzz_tool::Build::Smoke,
        SMOKE_SECONDS,
        false,
        false,
        NewInputs::Scratch,
        stop,
    )
}
