//! Chapter 7: the audit trail. Every decision above was recorded in a hash chain; `cordon
//! audit tail` shows the last records and `cordon audit verify` checks the chain. A cordon
//! without the `audit` subcommand gets the daemon's own log lines instead.

use std::time::Duration;

use crate::demo::ctx::Ctx;
use crate::process::run_with_timeout;

/// Daemon log lines worth showing when there is no audit CLI.
const LOG_MARKERS: &[&str] = &[
    "policy loaded",
    "agent started",
    "waiting for approval",
    "agent killed",
    "connection cut",
];

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "7. Audit trail",
        "Every decision (allowed, denied, pending, approved, limited) was written to a \
         hash-chained audit trail, attributed to the agent's cgroup.",
    );
    if !c.features.audit {
        c.n.skip(
            "`cordon audit tail` and `cordon audit verify`",
            "this cordon has no `audit` subcommand; showing the daemon's log instead",
        );
        show_log(c);
        return Ok(());
    }
    let tail_help = help_of(c, &["audit", "tail", "--help"]);
    let verify_help = help_of(c, &["audit", "verify", "--help"]);
    match tail_help {
        Some(help) => {
            let mut args = vec!["audit", "tail"];
            if help.contains("--agent") {
                args.extend(["--agent", "deployer"]);
            }
            if help.contains("--lines") {
                args.extend(["--lines", "8"]);
            } else if help.contains("-n,") || help.contains("-n ") {
                args.extend(["-n", "8"]);
            }
            let out = c.cordon(&args)?;
            let text = String::from_utf8_lossy(&out.stdout);
            c.n.shows("the newest records: who acted, the action, the decision and the rule.");
            c.n.check(
                "`cordon audit tail` shows the latest decisions",
                out.status.success() && !text.trim().is_empty(),
                "",
            );
        }
        None => {
            c.n.skip("`cordon audit tail`", "this cordon has no `audit tail`")
        }
    }
    match verify_help {
        Some(_) => {
            let out = c.cordon(&["audit", "verify"])?;
            c.n.shows("recomputing every record's hash and link finds the chain intact.");
            c.n.check(
                "`cordon audit verify` reports the chain intact",
                out.status.success(),
                "",
            );
        }
        None => {
            c.n.skip("`cordon audit verify`", "this cordon has no `audit verify`")
        }
    }
    Ok(())
}

fn help_of(c: &Ctx, args: &[&str]) -> Option<String> {
    run_with_timeout(
        std::process::Command::new(&c.cordon).args(args),
        Duration::from_secs(10),
    )
    .ok()
    .filter(|o| o.status.success())
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn show_log(c: &Ctx) {
    let log = c.w.daemon.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| LOG_MARKERS.iter().any(|m| l.contains(m)))
        .collect();
    c.n.command_text(&format!(
        "grep -E '{}' {}",
        LOG_MARKERS.join("|"),
        c.w.daemon.log_path().display()
    ));
    c.n.block(&lines.join("\n"));
}
