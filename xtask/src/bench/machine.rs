//! The machine and software the figures were measured on.
use std::{path::Path, process::Command};

use serde::Serialize;

use crate::sys::{output, workspace_root};

#[derive(Serialize, Default)]
pub struct Machine {
    pub date_utc: String,
    pub nproc: usize,
    pub cpu: String,
    pub mem_total: String,
    pub kernel: String,
    /// /proc/loadavg when the bench started: other work on the box skews every figure.
    pub loadavg_at_start: String,
    pub cordon_rev: String,
    pub cordon_version: String,
    pub oha: String,
    pub nginx: String,
    pub squid: String,
    pub mitmproxy: String,
    pub rustc: String,
}

pub fn describe(cordon: &Path, oha: &Path, mitmdump: Option<&Path>) -> Machine {
    let first = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unavailable".into())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let root = workspace_root();
    let rev =
        output(
            Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(["rev-parse", "--short=12", "HEAD"]),
        )
        .unwrap_or_default();
    let dirty = output(Command::new("git").arg("-C").arg(&root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_some_and(|s| !s.trim().is_empty());
    Machine {
        date_utc: first(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into()),
        mem_total: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        kernel: first(Command::new("uname").arg("-r")),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cordon_rev: format!(
            "{}{}",
            rev.trim(),
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ),
        cordon_version: first(Command::new(cordon).arg("--version")),
        oha: first(Command::new(oha).arg("--version")),
        nginx: first(Command::new("nginx").arg("-v")),
        squid: first(Command::new("squid").arg("-v")),
        mitmproxy: mitmdump.map_or_else(
            || "not installed".into(),
            |m| first(Command::new(m).arg("--version")),
        ),
        rustc: first(Command::new("rustc").arg("--version").current_dir(&root)),
    }
}
