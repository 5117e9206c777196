//! `cargo xtask bench [--quick]`: Cordon against direct, Squid and
//! mitmproxy on loopback, plus the criterion benches of the hot paths,
//! written to bench/REPORT.md and bench/results.json (a `--quick` run to
//! target/bench/quick/, so it never replaces a committed report). Installs what it
//! needs first (see `install`); needs root (eBPF, cgroups, apt-get). Every
//! process it starts is stopped when the bench ends, however it ends.
mod bare;
mod baseline;
mod certs;
mod connect;
mod console_paint;
mod contain;
mod cordon;
mod criterion;
mod fairness;
mod fsync;
mod goals;
mod http;
mod idle;
mod install;
mod jit;
mod jit_report;
mod jit_run;
mod kill;
mod machine;
mod oha;
mod only;
mod outcomes;
mod peers;
mod proc;
mod report;
mod report_more;
mod results;
mod rig;
mod rlimit;
mod specs;
mod upstream;
mod util;
mod wakeups;

pub use results::{BigRss, Results};
use rlimit::raise_nofile;
use util::{WorkDir, open_up};
pub use util::{free_port, median};

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{sys, toolchain};
use anyhow::bail;
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// One round, short runs, fewer idle connections: under two minutes
    /// once everything is installed and built. Writes its report under
    /// target/bench/quick/, not bench/.
    #[arg(long)]
    pub quick: bool,
    /// Start the upstream and Cordon only, print how to drive them, and wait
    /// for Enter: a rig to profile against (perf, flamegraphs). Writes no report.
    #[arg(long, conflicts_with = "quick")]
    pub rig: bool,
    /// With `--rig`: the daemon runs with `[audit] durability = "batched"`.
    #[arg(long, requires = "rig")]
    pub batched: bool,
    /// With `--rig`: also the JIT-token scenario's daemon (`cordon-jit`),
    /// with a load command for each of its two agents.
    #[arg(long, requires = "rig")]
    pub jit: bool,
    /// Another build's `cordon` binary, run as a third daemon (strict
    /// durability, the same config) in the HTTPS keep-alive and
    /// 1-connection scenarios: the report then gives CPU per request and
    /// req/s for this build and that one, from the same run.
    #[arg(long, value_name = "PATH", conflicts_with = "rig")]
    pub baseline_cordon: Option<PathBuf>,
    /// Only the console first-paint scenario (under a minute once built):
    /// prints its figures and writes no report.
    #[arg(long, conflicts_with_all = ["rig", "quick", "baseline_cordon"])]
    pub console_only: bool,
    /// Only the fairness scenario (one agent floods, another is measured;
    /// about a minute once built): prints its figures and goals, writes no
    /// report.
    #[arg(long, conflicts_with_all = ["rig", "quick", "baseline_cordon", "console_only"])]
    pub fairness_only: bool,
    /// Only the idle-connection scenario (1,000 then 10,000 agent
    /// connections held through the daemon, its RSS read): prints its
    /// figures and goal, writes no report.
    #[arg(long, conflicts_with_all = ["rig", "quick", "baseline_cordon", "console_only", "fairness_only"])]
    pub idle_only: bool,
    /// Only the connect()+close loop (inside an agent against outside),
    /// five rounds; with `--baseline-cordon`, that build's daemon runs the
    /// inside loop too, alternating with this one's: prints the figures and
    /// goal, writes no report.
    #[arg(long, conflicts_with_all = ["rig", "quick", "console_only", "fairness_only", "idle_only"])]
    pub connect_only: bool,
    /// Only the host-containment loops (open()+close() and fork+exec,
    /// inside an agent against outside), three rounds: prints the figures
    /// and goals, writes no report.
    #[arg(long, conflicts_with_all = ["rig", "quick", "baseline_cordon", "console_only", "fairness_only", "idle_only", "connect_only"])]
    pub contain_only: bool,
}

/// How long the daemon is left idle before an "after" RSS reading: it
/// hands freed heap back to the kernel every 10 s (`daemon/memory.rs`).
const SETTLE: Duration = Duration::from_secs(11);

/// How long and how often.
struct Plan {
    rounds: u32,
    secs: u32,
    connect_n: u32,
    connect_secs: u32,
    /// Iterations of the containment open()+close() and fork+exec loops.
    contain_open_n: u32,
    contain_spawn_n: u32,
    kill_rounds: u32,
    idle_levels: &'static [u64],
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                rounds: 1,
                secs: 2,
                connect_n: 20_000,
                connect_secs: 2,
                contain_open_n: 200_000,
                contain_spawn_n: 2_000,
                kill_rounds: 1,
                idle_levels: &[1_000],
            }
        } else {
            Plan {
                rounds: 3,
                secs: 8,
                connect_n: 100_000,
                connect_secs: 5,
                contain_open_n: 1_000_000,
                contain_spawn_n: 10_000,
                kill_rounds: 3,
                idle_levels: &[1_000, 10_000],
            }
        }
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !sys::is_root() {
        bail!(
            "the bench attaches eBPF programs, creates cgroups and installs packages: run it as root"
        );
    }
    let setup_started = Instant::now();
    if !toolchain::is_ready() {
        toolchain::setup()?;
    }
    if args.console_only {
        return console_only();
    }
    if args.fairness_only {
        return fairness_only();
    }
    if args.idle_only {
        return only::idle_only();
    }
    if args.connect_only {
        return only::connect_only(5, args.baseline_cordon.as_deref());
    }
    if args.contain_only {
        return only::contain_only();
    }
    let tools = install::all()?;
    criterion::build()?;
    // The daemon inherits this: 10,000 idle connections are 20,000 sockets.
    raise_nofile(100_000);
    let plan = Plan::new(args.quick);
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    if args.rig {
        let audit = if args.batched {
            cordon::Audit::Batched
        } else {
            cordon::Audit::Strict
        };
        return hold_rig(&tools, dir, &certs, audit, args.jit);
    }
    let machine = machine::describe(
        &tools.cordon,
        &tools.oha,
        tools.mitmdump.as_ref().ok().map(PathBuf::as_path),
    );
    let mut r = Results {
        mode: if args.quick { "quick" } else { "full" },
        rounds: plan.rounds,
        secs: plan.secs,
        connect_n: plan.connect_n,
        connect_secs: plan.connect_secs,
        machine,
        ..Results::default()
    };
    if let Some(b) = &args.baseline_cordon {
        r.baseline = Some(baseline::describe(b)?);
    }
    measure(
        &tools,
        dir,
        certs,
        &plan,
        &mut r,
        setup_started,
        args.baseline_cordon.as_deref(),
    )?;
    // Only a full run's figures may stand in the committed report.
    let out = if args.quick {
        install::target_dir().join("bench").join("quick")
    } else {
        sys::workspace_root().join("bench")
    };
    std::fs::create_dir_all(out.join("configs"))?;
    for (from, to) in [
        ("nginx.conf", "nginx.conf"),
        ("squid/squid.conf", "squid.conf"),
        ("cordon-policies/bench.toml", "cordon-policy.toml"),
    ] {
        let _ = std::fs::copy(dir.join(from), out.join("configs").join(to));
    }
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&r)?)?;
    std::fs::write(out.join("REPORT.md"), report::markdown(&r))?;
    eprintln!(
        "xtask: bench: wrote {} and {}",
        out.join("REPORT.md").display(),
        out.join("results.json").display()
    );
    for g in &r.goals {
        let v = match g.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        eprintln!("  {:<70} {:<40} {v}", g.goal, g.measured);
    }
    Ok(())
}

fn measure(
    tools: &install::Tools,
    dir: &Path,
    certs: certs::Certs,
    plan: &Plan,
    r: &mut Results,
    setup_started: Instant,
    baseline_bin: Option<&Path>,
) -> anyhow::Result<()> {
    let upstream = upstream::start(dir, &certs)?;
    let cordon = cordon::Cordon::start(&tools.cordon, dir, &certs, cordon::Audit::Strict)?;
    let cordon_batched = cordon::Cordon::start(&tools.cordon, dir, &certs, cordon::Audit::Batched)?;
    let cordon_baseline = baseline_bin
        .map(|b| {
            cordon::Cordon::start_named("cordon-baseline", b, dir, &certs, cordon::Audit::Strict)
        })
        .transpose()?;
    // Optional: a build whose config refuses `outcomes` still benches the rest.
    let cordon_no_outcomes =
        cordon::Cordon::start(&tools.cordon, dir, &certs, cordon::Audit::StrictNoOutcomes)
            .map_err(|e| format!("{e:#}"));
    let cordon_jit =
        jit::start(&tools.cordon, dir, &certs, upstream.https_jit).map_err(|e| format!("{e:#}"));
    let bare = match &tools.forwarder {
        Ok(bin) => bare::Bare::start(bin, dir, &certs, &upstream).map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.clone()),
    };
    let squid = tools
        .squid
        .clone()
        .and_then(|()| peers::start_squid(dir, &certs).map_err(|e| format!("{e:#}")));
    let mitmproxy = match &tools.mitmdump {
        Ok(m) => peers::start_mitmproxy(dir, m, &certs).map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.clone()),
    };
    for (name, p) in [("squid", &squid), ("mitmproxy", &mitmproxy)] {
        let status = match p {
            Ok(peer) => format!("running on 127.0.0.1:{}", peer.port),
            Err(e) => format!("**not part of this run**: {e}"),
        };
        r.peers.insert(name.into(), status);
    }
    r.peers.insert(
        "bare-forwarder".into(),
        match &bare {
            Ok(b) => format!("running (pid {})", b.guard.pid()),
            Err(e) => format!("**not part of this run**: {e}"),
        },
    );
    for (name, d) in [
        ("cordon-no-outcomes", &cordon_no_outcomes),
        ("cordon-jit", &cordon_jit),
    ] {
        let status = match d {
            Ok(c) => format!("running (pid {})", c.pid()),
            Err(e) => format!("**not part of this run**: {}", e.replace('\n', " ")),
        };
        r.peers.insert(name.into(), status);
    }
    let rig = rig::Rig {
        oha: tools.oha.clone(),
        probe: tools.probe.clone(),
        certs,
        squid,
        mitmproxy,
        bare,
        cordon,
        cordon_batched,
        cordon_baseline,
        cordon_no_outcomes,
        upstream,
    };
    let no_outcomes_missing = rig.cordon_no_outcomes.as_ref().err().cloned();
    let pid = rig.cordon.pid();
    if let Some(limit) = open_file_limit(pid) {
        r.notes.push(format!(
            "The daemon's open-file limit was {limit}; it needs two per held agent connection, so past about {} connections new ones wait in the accept queue (raising the hard limit needs CAP_SYS_RESOURCE).",
            limit / 2
        ));
    }
    std::thread::sleep(Duration::from_secs(2));
    r.memory.idle_fresh_mib = Some(idle::rss_mib(pid));
    // Beside the daemons' audit logs (the same filesystem), before load.
    match fsync::measure(dir, 200) {
        Ok(f) => {
            r.notes.push(format!(
                "The disk's fdatasync under the audit logs, measured before the load: p50 {:.0} us, p99 {:.0} us over {} appends.",
                f.p50_us, f.p99_us, f.n
            ));
            r.fsync = Some(f);
        }
        Err(e) => r
            .notes
            .push(format!("the disk's fsync was not measured: {e:#}")),
    }
    r.setup_secs = setup_started.elapsed().as_secs_f64();
    let started = Instant::now();

    for spec in specs::specs(plan.secs) {
        let before = idle::rss_mib(pid);
        let res = http::run(&rig, &spec, plan.rounds);
        if spec.big {
            std::thread::sleep(SETTLE);
            let peak = res
                .via(rig::Via::Cordon)
                .and_then(|v| v.usage)
                .map_or(before, |u| u.peak_rss_mib);
            r.memory.big = Some(BigRss {
                before_mib: before,
                peak_mib: peak,
                after_mib: idle::rss_mib(pid),
            });
        }
        r.http.push(res);
    }
    r.jit = jit_run::run(
        &rig,
        cordon_jit.as_ref().map_err(String::as_str),
        plan.rounds,
        plan.secs,
    );
    drop(cordon_jit);
    r.connect = connect::run(
        &rig.cordon,
        &rig.probe,
        dir,
        plan.rounds,
        plan.connect_n,
        plan.connect_secs,
    );
    r.contain = contain::run(
        &rig.cordon,
        &rig.probe,
        dir,
        plan.rounds,
        plan.contain_open_n,
        plan.contain_spawn_n,
    );
    r.kill = kill::run(&rig, plan.kill_rounds);
    r.console = console_paint::run(&tools.cordon, &tools.probe, dir, &rig.certs);
    r.memory.idle_conns = idle::run(&rig.cordon, &rig.probe, dir, plan.idle_levels);
    r.fairness = fairness::run(&tools.cordon, &tools.oha, dir, &rig.certs, &rig.upstream);
    std::thread::sleep(SETTLE);
    r.memory.idle_after_load_mib = Some(idle::rss_mib(pid));
    r.memory.hwm_mib = proc::status_kib(pid, "VmHWM").map(|k| k as f64 / 1024.0);
    let log = std::fs::read_to_string(rig.cordon.state.join("daemon.log")).unwrap_or_default();
    drop(rig);
    let count = |level: &str| log.lines().filter(|l| l.contains(level)).count();
    r.notes.push(format!(
        "The daemon ran at its default log level (info; decisions are logged at debug); its log had {} lines, {} WARN and {} ERROR.",
        log.lines().count(),
        count(" WARN"),
        count("ERROR")
    ));
    // On a quiet machine: every server of the rig is stopped by now.
    r.criterion = criterion::run(&install::target_dir(), plan.rounds == 1);
    r.measure_secs = started.elapsed().as_secs_f64();
    if plan.rounds == 1 {
        r.notes.push("--quick: one round of 2 s runs, 1,000 idle connections only (not 10,000), one audit concurrency level; figures are indicative only.".into());
    }
    r.notes.push("The goal figures compare Cordon with direct in the same round; direct itself varies between rounds and machines.".into());
    baseline::compare(r);
    r.outcomes = outcomes::compare(r, no_outcomes_missing);
    r.goals = goals::judge(r);
    Ok(())
}

/// `--console-only`: the console scenario alone, on release builds of
/// Cordon and the probe, without the peers' installs.
fn console_only() -> anyhow::Result<()> {
    let (cordon, probe) = install::cordon_and_probe()?;
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    let r = console_paint::run(&cordon, &probe, dir, &certs);
    println!("{}", serde_json::to_string_pretty(&r)?);
    let g = console_paint::goal(&r);
    eprintln!("  {:<70} {:<40} {:?}", g.goal, g.measured, g.met);
    if !r.errors.is_empty() {
        bail!("the console scenario failed: {}", r.errors.join("; "));
    }
    Ok(())
}

/// `--fairness-only`: the fairness scenario alone, on a release build of
/// Cordon, oha and nginx (no peers).
fn fairness_only() -> anyhow::Result<()> {
    let (cordon, _probe) = install::cordon_and_probe()?;
    let oha = install::oha()?;
    raise_nofile(100_000);
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    let up = upstream::start(dir, &certs)?;
    let f = fairness::run(&cordon, &oha, dir, &certs, &up);
    println!("{}", serde_json::to_string_pretty(&f)?);
    for g in fairness::goals(&f) {
        let v = match g.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        eprintln!("  {:<75} {:<60} {v}", g.goal, g.measured);
    }
    if !f.errors.is_empty() {
        bail!("the fairness scenario failed: {}", f.errors.join("; "));
    }
    Ok(())
}

/// `--rig`: the upstream and Cordon, kept up until Enter.
fn hold_rig(
    tools: &install::Tools,
    dir: &Path,
    certs: &certs::Certs,
    audit: cordon::Audit,
    with_jit: bool,
) -> anyhow::Result<()> {
    let upstream = upstream::start(dir, certs)?;
    let cordon = cordon::Cordon::start(&tools.cordon, dir, certs, audit)?;
    let shell = |run: std::process::Command| -> String {
        let words: Vec<String> = std::iter::once(run.get_program())
            .chain(run.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        words.join(" ")
    };
    let run = shell(cordon.run_as(cordon::AGENT, &tools.oha));
    let jit_daemon = if with_jit {
        Some(jit::start(&tools.cordon, dir, certs, upstream.https_jit)?)
    } else {
        None
    };
    println!("cordon daemon pid {}", cordon.pid());
    println!("state dir        {}", cordon.state.display());
    println!(
        "upstream         https://localhost:{}/ (1 MiB at {}), http://127.0.0.1:{}/",
        upstream.https,
        upstream::BIG_PATH,
        upstream.http
    );
    println!(
        "load through it  {} -z 10s -c 64 --cacert {} https://localhost:{}/",
        run,
        cordon.agent_ca().display(),
        upstream.https
    );
    println!(
        "profile          perf record -F 999 -g -p {} -- sleep 8",
        cordon.pid()
    );
    if let Some(j) = &jit_daemon {
        println!("jit daemon pid   {}", j.pid());
        for (label, agent) in [
            ("jit static load ", jit::STATIC_AGENT),
            ("jit token load  ", jit::JIT_AGENT),
        ] {
            println!(
                "{label} {} -z 10s -c 1 --cacert {} https://localhost:{}{}",
                shell(j.run_as(agent, &tools.oha)),
                j.agent_ca().display(),
                upstream.https_jit,
                jit::PATH
            );
        }
    }
    println!("press Enter to stop");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    drop(jit_daemon);
    drop(cordon);
    drop(upstream);
    Ok(())
}

/// The soft "Max open files" of a process.
fn open_file_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
