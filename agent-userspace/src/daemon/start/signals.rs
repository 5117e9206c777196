//! The signals the daemon answers: SIGHUP reloads, SIGTERM and SIGINT
//! stop it, SIGUSR2 upgrades it in place once the new binary is known to run.
use anyhow::Context;

use crate::daemon::{Shared, handover};

/// `systemctl reload cordon`: a broken policy is logged with its file and
/// line, and the policy in force stays.
pub(super) async fn reload_on_hangup(
    d: Shared,
    mut hangup: tokio::signal::unix::Signal,
    n: crate::notify::Notifier,
) {
    while hangup.recv().await.is_some() {
        crate::notify::log_failure(n.reloading());
        let status = match crate::daemon::reload::reload_all(&d, "SIGHUP").await {
            Ok(v) => format!("enforcing; policy {v}"),
            Err(_) => {
                format!(
                    "enforcing; policy {} (last reload failed)",
                    d.policy.version()
                )
            }
        };
        crate::notify::log_failure(n.ready(&status));
    }
}

/// Why the daemon stops: for good, or to exec the upgraded binary.
pub(super) enum Stop {
    Terminate,
    /// The new binary's `--version` line.
    Upgrade(String),
}

pub(super) struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            usr2: signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?,
        })
    }

    /// Waits for SIGTERM, SIGINT, or a SIGUSR2 whose new binary runs
    /// (one that does not is logged, and the daemon keeps serving).
    pub(super) async fn next(&mut self, exe: &handover::Exe, n: &crate::notify::Notifier) -> Stop {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); return Stop::Terminate }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping"); return Stop::Terminate }
                _ = self.usr2.recv() => {}
            }
            let probe = exe.clone();
            match tokio::task::spawn_blocking(move || handover::preflight(&probe)).await {
                Ok(Ok(version)) => {
                    tracing::info!(path = %exe.path.display(), %version, "SIGUSR2: upgrading in place");
                    return Stop::Upgrade(version);
                }
                Ok(Err(e)) => {
                    tracing::error!("SIGUSR2: upgrade called off, still serving: {e:#}");
                    crate::notify::log_failure(
                        n.status("upgrade called off: the new binary does not run"),
                    );
                }
                Err(e) => tracing::error!("SIGUSR2: upgrade called off: {e}"),
            }
        }
    }
}
