//! Chapter 7: the audit trail. Every decision above was recorded in a hash chain; `cordon
//! audit tail` shows the last records and `cordon audit verify` checks the chain. A cordon
//! without the `audit` subcommand gets the daemon's own log lines instead.

use std::time::Duration;

use crate::daemon::strip_ansi;
use crate::demo::ctx::Ctx;
use crate::process::run_with_timeout;

/// Daemon log lines worth showing when there is no audit CLI.
const LOG_MARKERS: &[&str] = &[
    "policy loaded",
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
        Some(help) => tail(c, &help)?,
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

/// The refusals of the whole run, then the deployer's latest records (the approval with the
/// name of who approved it).
fn tail(c: &mut Ctx, help: &str) -> anyhow::Result<()> {
    let lines_flag = if help.contains("--lines") {
        Some("--lines")
    } else {
        None
    };
    let filtered = help.contains("--decision") && help.contains("--agent");
    let mut deny = vec!["audit", "tail"];
    if filtered {
        deny.extend(["--decision", "deny"]);
    }
    // glibc asks nscd on every name lookup and containment refuses that
    // socket (nscd would resolve names around Cordon's DNS), so each agent
    // run leaves one such refusal: look far enough back.
    if let Some(flag) = lines_flag {
        deny.extend([flag, "40"]);
    }
    let out = c.cordon(&deny)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.shows("each refusal of this run, with the agent, the action, its params and the rule that decided.");
    c.n.check(
        "`cordon audit tail` shows the refusals of this run",
        out.status.success()
            && text.contains("github.branch.delete")
            && text.contains("limit:demo-charges"),
        "",
    );
    if filtered {
        let mut mine = vec!["audit", "tail", "--agent", "deployer"];
        if let Some(flag) = lines_flag {
            mine.extend([flag, "20"]);
        }
        let out = c.cordon(&mine)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        c.n.shows("the approved merge is recorded with who approved it.");
        c.n.check(
            "the audit trail names the approver",
            out.status.success() && text.contains("approval.granted"),
            "",
        );
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
    let lines: Vec<String> = log
        .lines()
        .map(strip_ansi)
        .filter(|l| LOG_MARKERS.iter().any(|m| l.contains(m)))
        .collect();
    c.n.command_text(&format!(
        "grep -E '{}' {}",
        LOG_MARKERS.join("|"),
        c.w.daemon.log_path().display()
    ));
    c.n.block(&lines.join("\n"));
}
