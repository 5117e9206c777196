//! `--idle-only`, `--connect-only` and `--contain-only`: one scenario alone, on release
//! builds of Cordon and the probe, without the peers' installs. Each prints
//! its figures and its goal and writes no report.
use std::path::Path;

use anyhow::bail;

use super::{
    certs, connect, contain,
    cordon::{Audit, Cordon},
    idle, install, open_file_limit, raise_nofile,
    util::{WorkDir, open_up},
};

/// The idle scenario's levels, as in a full run.
const IDLE_LEVELS: &[u64] = &[1_000, 10_000];

pub fn idle_only() -> anyhow::Result<()> {
    let (bin, probe) = install::cordon_and_probe()?;
    // The daemon inherits this: 10,000 idle connections are 20,000 sockets.
    raise_nofile(100_000);
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    let cordon = Cordon::start(&bin, dir, &certs, Audit::Strict)?;
    let limit = open_file_limit(cordon.pid());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let fresh = idle::rss_mib(cordon.pid());
    let r = idle::run(&cordon, &probe, dir, IDLE_LEVELS);
    println!("{}", serde_json::to_string_pretty(&r)?);
    eprintln!(
        "  daemon open-file limit {}; RSS fresh {fresh:.1} MiB",
        limit.map_or("unknown".into(), |l| l.to_string())
    );
    for l in &r.levels {
        let met = l.spliced >= l.connections && l.rss_held_mib <= 150.0;
        eprintln!(
            "  {:>6} connections: {} through in {:.1} s, RSS {:.1} MiB held ({:.1} before, {:.1} after), {} daemon fds{}",
            l.connections,
            l.spliced,
            l.secs_to_open,
            l.rss_held_mib,
            l.rss_before_mib,
            l.rss_after_mib,
            l.daemon_fds_held,
            if l.connections == 10_000 {
                if met { ": goal met" } else { ": goal NOT MET" }
            } else {
                ""
            }
        );
    }
    if !r.errors.is_empty() {
        bail!("the idle scenario failed: {}", r.errors.join("; "));
    }
    Ok(())
}

/// Rounds alternate outside, inside this build and, with a baseline,
/// inside that build, so a loaded machine weighs on both alike.
pub fn connect_only(rounds: u32, baseline: Option<&Path>) -> anyhow::Result<()> {
    const N: u32 = 100_000;
    const SECS: u32 = 5;
    let (bin, probe) = install::cordon_and_probe()?;
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    let mut daemons = vec![(
        "this build",
        Cordon::start(&bin, dir, &certs, Audit::Strict)?,
    )];
    if let Some(b) = baseline {
        let c = Cordon::start_named("cordon-baseline", b, dir, &certs, Audit::Strict)?;
        daemons.push(("baseline", c));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut added: Vec<Vec<f64>> = vec![vec![]; daemons.len()];
    for round in 0..rounds {
        for (i, (name, cordon)) in daemons.iter().enumerate() {
            let r = connect::run(cordon, &probe, dir, 1, N, SECS);
            if !r.errors.is_empty() {
                bail!("the connect scenario failed: {}", r.errors.join("; "));
            }
            let (Some(o), Some(ins), Some(a)) =
                (r.outside_median, r.inside_median, r.added_per_connect)
            else {
                bail!("the connect scenario measured nothing");
            };
            eprintln!(
                "  round {} {name:<10}: outside {:.0}/s, inside {:.0}/s, connect() p50 {:.1} vs {:.1} us: {:+.1}% per connect+close",
                round + 1,
                o.per_sec,
                ins.per_sec,
                o.p50_us,
                ins.p50_us,
                a * 100.0
            );
            added[i].push(a);
        }
    }
    for ((name, _), a) in daemons.iter().zip(added) {
        let m = super::median(a);
        let met = if m <= 0.25 { "met" } else { "NOT MET" };
        eprintln!(
            "  {name}: median {:+.1}% per connect+close (goal <= +25%): {met}",
            m * 100.0
        );
    }
    Ok(())
}

/// The containment loops with a full run's rounds and counts, against a strict daemon.
pub fn contain_only() -> anyhow::Result<()> {
    let plan = super::Plan::new(false);
    let (bin, probe) = install::cordon_and_probe()?;
    let work = WorkDir::create()?;
    let dir = work.0.as_path();
    let certs = certs::make(&dir.join("certs"))?;
    open_up(dir)?;
    let cordon = Cordon::start(&bin, dir, &certs, Audit::Strict)?;
    let r = contain::run(
        &cordon,
        &probe,
        dir,
        plan.rounds,
        plan.contain_open_n,
        plan.contain_spawn_n,
    );
    if !r.errors.is_empty() {
        bail!("the containment scenario failed: {}", r.errors.join("; "));
    }
    for (name, p) in [("open()+close()", &r.open), ("fork+exec+wait", &r.spawn)] {
        let pairs: Vec<String> = p
            .outside
            .iter()
            .zip(&p.inside)
            .map(|(o, i)| {
                format!(
                    "{:.2} (p50 {:.2})",
                    i.ns_per_op / o.ns_per_op,
                    i.p50_ns / o.p50_ns
                )
            })
            .collect();
        let Some(ratio) = p.ratio else {
            bail!("the containment scenario measured no {name} pair");
        };
        eprintln!(
            "  {name}: inside/outside per pair {}; median {ratio:.3}x (goal <= 1.15x): {}",
            pairs.join(" "),
            if ratio <= 1.15 { "met" } else { "NOT MET" }
        );
    }
    Ok(())
}
