//! Scenario 12: the cost of host containment. The probe runs an
//! open()+close() loop on one readable file and a fork+exec loop of
//! `/bin/true`, as `nobody`, from a working directory nobody owns: once
//! outside any agent, once inside a contained agent (`cordon run --user
//! nobody`: its Landlock domain with the deny list carved out of the
//! grants, and the BPF LSM layer where the kernel loads it). Same binary,
//! same file, same counts. Each round alternates the two sides in
//! [`BLOCKS`] short blocks, and the figure is the median, over every
//! adjacent outside/inside pair, of inside over outside time per iteration.
//! Why blocks: this host's speed drifts by up to 1.7x over seconds (one
//! full report had the same outside loop at 874 and 1,525 ns p50 in two
//! rounds), so one long run per side per round compared different
//! machines; pairs a fraction of a second apart compare the same one.
use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{cordon::Cordon, median};

/// The agent the loops run as inside (the bench policy covers `bench-*`).
const AGENT: &str = "bench-contain";
const USER: &str = "nobody";
/// Run by the fork+exec loop: the cheapest program there is.
const TRUE: &str = "/bin/true";
/// Bounds every loop; the counts normally end it well before.
const MAX_SECS: u32 = 60;
/// Outside/inside pairs per round; each block runs 1/BLOCKS of the iterations.
const BLOCKS: u32 = 8;

/// One loop run, as the probe prints it.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Loop {
    /// Set by the bench: ratios pair the two sides' runs with the same
    /// number (one per block of each round).
    #[serde(default)]
    pub round: u32,
    pub ops: u64,
    pub secs: f64,
    /// Wall time of the loop over its iterations.
    pub ns_per_op: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
}

/// One loop kind, both sides, every round.
#[derive(Serialize, Default)]
pub struct Pair {
    /// Per side and round, split over `blocks` runs.
    pub iterations: u32,
    pub blocks: u32,
    pub outside: Vec<Loop>,
    pub inside: Vec<Loop>,
    /// Medians over every block of ns per iteration.
    pub outside_ns_per_op: Option<f64>,
    pub inside_ns_per_op: Option<f64>,
    /// Median over adjacent pairs of inside / outside ns per iteration.
    pub ratio: Option<f64>,
}

#[derive(Serialize, Default)]
pub struct ContainResult {
    pub open: Pair,
    pub spawn: Pair,
    pub file: String,
    pub workdir: String,
    /// `cordon status`'s `containment` object at the start: which layers
    /// the inside runs actually had (a layer that failed to attach is
    /// reported there, and would make the ratio flatter).
    pub layers: serde_json::Value,
    pub errors: Vec<String>,
}

/// What both sides share: the probe copy, the file, the working dir, the
/// user's ids.
struct Setup {
    probe: PathBuf,
    file: PathBuf,
    work: PathBuf,
    uid: u32,
    gid: u32,
}

pub fn run(
    cordon: &Cordon,
    probe: &Path,
    dir: &Path,
    rounds: u32,
    open_n: u32,
    spawn_n: u32,
) -> ContainResult {
    let mut res = ContainResult {
        open: Pair {
            iterations: open_n,
            blocks: BLOCKS,
            ..Pair::default()
        },
        spawn: Pair {
            iterations: spawn_n,
            blocks: BLOCKS,
            ..Pair::default()
        },
        ..ContainResult::default()
    };
    let s = match setup(probe, dir) {
        Ok(s) => s,
        Err(e) => {
            res.errors.push(format!("setup: {e:#}"));
            return res;
        }
    };
    res.layers = cordon
        .cli(&["status"])
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v.get("containment").cloned())
        .unwrap_or_default();
    res.file = s.file.display().to_string();
    res.workdir = s.work.display().to_string();
    let file = s.file.to_string_lossy().into_owned();
    for round in 1..=rounds {
        eprintln!("xtask: bench: containment loops round {round}");
        for (name, pair, args) in [
            ("open", &mut res.open, ["open-loop", file.as_str()]),
            ("spawn", &mut res.spawn, ["spawn-loop", TRUE]),
        ] {
            let per_block = (pair.iterations / BLOCKS).max(1);
            for block in 0..BLOCKS {
                let run = (round - 1) * BLOCKS + block + 1;
                let mut outside = Command::new(&s.probe);
                outside.uid(s.uid).gid(s.gid);
                let mut inside = cordon.run_user(AGENT, USER, &s.probe);
                for (side, cmd, into) in [
                    ("outside", &mut outside, &mut pair.outside),
                    ("inside", &mut inside, &mut pair.inside),
                ] {
                    cmd.args(args)
                        .arg(per_block.to_string())
                        .arg(MAX_SECS.to_string())
                        .current_dir(&s.work);
                    match one(cmd) {
                        Ok(l) if l.ops == u64::from(per_block) => into.push(Loop { round: run, ..l }),
                        Ok(l) => res.errors.push(format!(
                            "{name} {side}, round {round} block {block}: {} of {per_block} iterations within {MAX_SECS} s",
                            l.ops
                        )),
                        Err(e) => res
                            .errors
                            .push(format!("{name} {side}, round {round} block {block}: {e:#}")),
                    }
                }
            }
        }
    }
    for pair in [&mut res.open, &mut res.spawn] {
        summarize(pair);
    }
    res
}

/// A root-owned dir holding a copy of the probe (the build tree need not
/// be searchable by nobody) and a 4 KiB file, both world-readable; in it a
/// working dir owned by nobody, as an agent's would be.
fn setup(probe: &Path, dir: &Path) -> anyhow::Result<Setup> {
    let (uid, gid) = user_ids(USER)?;
    let base = dir.join("contain");
    let work = base.join("work");
    std::fs::create_dir_all(&work)?;
    let copy = base.join("bench-probe");
    std::fs::copy(probe, &copy).with_context(|| format!("copying {}", probe.display()))?;
    let file = base.join("readable.txt");
    std::fs::write(&file, vec![b'x'; 4096])?;
    for (path, mode) in [
        (&base, 0o755),
        (&copy, 0o755),
        (&file, 0o644),
        (&work, 0o755),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    std::os::unix::fs::chown(&work, Some(uid), Some(gid))?;
    Ok(Setup {
        probe: copy,
        file,
        work,
        uid,
        gid,
    })
}

/// uid and gid of a user, from /etc/passwd.
fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .with_context(|| format!("no user {user} in /etc/passwd"))
}

fn one(cmd: &mut Command) -> anyhow::Result<Loop> {
    super::util::probe_json(cmd, "loop")
}

/// Medians over blocks; the ratio only from pairs where both sides ran.
fn summarize(p: &mut Pair) {
    let med = |v: &[Loop]| (!v.is_empty()).then(|| median(v.iter().map(|l| l.ns_per_op).collect()));
    p.outside_ns_per_op = med(&p.outside);
    p.inside_ns_per_op = med(&p.inside);
    let ratios: Vec<f64> = p
        .outside
        .iter()
        .filter_map(|o| {
            let i = p.inside.iter().find(|i| i.round == o.round)?;
            Some(i.ns_per_op / o.ns_per_op)
        })
        .collect();
    p.ratio = (!ratios.is_empty()).then(|| median(ratios));
}
