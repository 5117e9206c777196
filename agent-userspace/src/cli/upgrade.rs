//! `cordon upgrade`: asks the running daemon to replace itself with the
//! binary now installed at its path (SIGUSR2, `daemon/handover.rs`) and
//! waits until the new binary serves. The package's postinst runs it, so a
//! package upgrade keeps the daemon's sockets and pins and refuses no
//! agent's connect. The pid stays; `serving_since_ms` in the status tells
//! the new image from the old.
use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;

use super::args::Client;
use crate::{
    control::{
        client::{self, ClientError},
        proto::{Request, StatusReply},
    },
    paths::Paths,
};

/// The daemon cannot upgrade in place (it predates it): restart it instead.
pub const CANNOT: u8 = 3;
const POLL: Duration = Duration::from_millis(100);
const CALL: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub client: Client,
    /// How long to wait for the new binary to serve.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// What the daemon's status says about an upgrade from `before`.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// The same image still serves (the swap has not happened yet, or the
    /// new binary did not run and the upgrade was called off).
    Waiting,
    /// A new image of the same process serves.
    Done,
    /// Another process answers: this daemon was not upgraded but replaced.
    Replaced,
}

/// Compares two status replies (pure).
pub fn progress(before: &StatusReply, now: &StatusReply) -> Progress {
    if now.pid != before.pid {
        return Progress::Replaced;
    }
    match (before.serving_since_ms, now.serving_since_ms) {
        (Some(a), Some(b)) if a != b => Progress::Done,
        (None, Some(_)) => Progress::Done,
        _ => Progress::Waiting,
    }
}

fn status(socket: &std::path::Path) -> Result<StatusReply, ClientError> {
    let body = client::call(socket, &Request::Status, CALL)?;
    serde_json::from_value(body).map_err(|e| ClientError::BadReply(e.to_string()))
}

pub fn run(a: &UpgradeArgs) -> anyhow::Result<ExitCode> {
    let socket = Paths::resolve(a.client.state_dir.as_deref()).socket;
    let before = match status(&socket) {
        Ok(s) => s,
        Err(ClientError::NoSocket(_) | ClientError::Stale(_)) => {
            println!("cordon upgrade: no daemon is running; nothing to upgrade");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).context("asking the daemon for its status"),
    };
    if !before.upgrades_in_place {
        eprintln!(
            "cordon upgrade: the running daemon (cordon {}, pid {}) cannot upgrade in place; \
             restart it to run the installed binary",
            before.version, before.pid
        );
        return Ok(ExitCode::from(CANNOT));
    }
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(before.pid).context("the daemon's pid is out of range")?,
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2)
        .with_context(|| format!("signalling the daemon (pid {})", before.pid))?;
    let deadline = Instant::now() + Duration::from_secs(a.timeout_secs);
    while Instant::now() < deadline {
        std::thread::sleep(POLL);
        // Between the old image's stop and the new one's start nothing
        // answers: keep asking.
        let Ok(now) = status(&socket) else { continue };
        match progress(&before, &now) {
            Progress::Waiting => {}
            Progress::Done => {
                println!(
                    "cordon upgrade: pid {} now runs cordon {} (was {}); sockets and pinned programs kept",
                    now.pid, now.version, before.version
                );
                return Ok(ExitCode::SUCCESS);
            }
            Progress::Replaced => bail!(
                "another daemon (pid {}) answers in place of pid {}: the daemon stopped instead of \
                 upgrading (see its log)",
                now.pid,
                before.pid
            ),
        }
    }
    bail!(
        "the daemon (pid {}) did not come back upgraded within {} s; it calls the upgrade off and \
         keeps serving when the installed binary does not run (see its log)",
        before.pid,
        a.timeout_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(pid: u32, since: Option<u64>) -> StatusReply {
        StatusReply {
            version: "0.1.0".into(),
            pid,
            proxy_port: 1,
            dns_port: 2,
            policy_version: "v".into(),
            cgroup_parent: "/".into(),
            containment: serde_json::Value::Null,
            console: None,
            serving_since_ms: since,
            upgrades_in_place: true,
        }
    }

    #[test]
    fn only_a_new_image_of_the_same_process_counts_as_upgraded() {
        let before = status(7, Some(100));
        assert_eq!(progress(&before, &status(7, Some(100))), Progress::Waiting);
        assert_eq!(progress(&before, &status(7, None)), Progress::Waiting);
        assert_eq!(progress(&before, &status(7, Some(250))), Progress::Done);
        assert_eq!(progress(&before, &status(8, Some(250))), Progress::Replaced);
        assert_eq!(
            progress(&status(7, None), &status(7, Some(1))),
            Progress::Done
        );
    }

    #[test]
    fn a_status_from_an_older_daemon_reads_as_unable_to_upgrade_in_place() {
        let old = serde_json::json!({
            "version": "0.0.9", "pid": 5, "proxy_port": 1, "dns_port": 2,
            "policy_version": "v", "cgroup_parent": "/"
        });
        let s: StatusReply = serde_json::from_value(old).expect("older status");
        assert!(!s.upgrades_in_place);
        assert_eq!(s.serving_since_ms, None);
    }
}
