//! Landlock refusal records that never reached the daemon, written to the
//! trail as counts. The refusals themselves held; what was lost is their
//! itemised record, and a trail that silently lacks them would read as a
//! quiet agent. Two places lose them:
//! - the kernel, when its audit queue is full or a rate limit is over: it
//!   counts the records it dropped, host-wide, in `lost`;
//! - the daemon's own audit-stream socket, when its receive buffer
//!   overruns (the reader sees `ENOBUFS`, not how many).
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{Shared, audit_status::Auditor};

const EVERY: Duration = Duration::from_secs(2);

/// What was lost since the last record, from the two counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    kernel_lost: u32,
    overruns: u64,
}

/// Where records were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Kernel,
    Stream,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Kernel => "kernel-audit",
            Source::Stream => "audit-stream",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Source::Kernel => {
                "the kernel dropped audit records (a host-wide count: a full queue or its rate limit); Landlock refusals among them held but are not itemised"
            }
            Source::Stream => {
                "the daemon's audit-stream socket overran (a count of overruns); Landlock refusals among what it lost held but are not itemised"
            }
        }
    }
}

/// The records owed for counters that moved from `reported` to `now`. The
/// kernel's counter is 32 bits and wraps.
fn owed(reported: Seen, now: Seen) -> Vec<(Source, u64)> {
    let mut out = Vec::new();
    let dropped = now.kernel_lost.wrapping_sub(reported.kernel_lost);
    if dropped != 0 {
        out.push((Source::Kernel, u64::from(dropped)));
    }
    let overruns = now.overruns.saturating_sub(reported.overruns);
    if overruns != 0 {
        out.push((Source::Stream, overruns));
    }
    out
}

/// Every two seconds, records what the two counters say was lost since the
/// daemon started. `kernel_lost_at_start` is the kernel's count when the
/// daemon subscribed: earlier losses are not this daemon's to report.
pub(super) async fn run(d: Shared, kernel_lost_at_start: u32, overruns: Arc<AtomicU64>) {
    let mut auditor = match Auditor::open() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("opening the audit socket: {e}; lost Landlock records are not counted");
            return;
        }
    };
    let mut reported = Seen {
        kernel_lost: kernel_lost_at_start,
        overruns: 0,
    };
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let (back, status) = match tokio::task::spawn_blocking(move || {
            let status = auditor.status();
            (auditor, status)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    "reading the kernel audit status: {e}; lost Landlock records are no longer counted"
                );
                return;
            }
        };
        auditor = back;
        let kernel_lost = match status {
            Ok(s) => s.lost,
            Err(e) => {
                tracing::warn!("reading the kernel audit status: {e}");
                reported.kernel_lost
            }
        };
        let now = Seen {
            kernel_lost,
            overruns: overruns.load(Ordering::Relaxed),
        };
        for (source, count) in owed(reported, now) {
            match record(&d, source, count).await {
                Ok(()) => match source {
                    Source::Kernel => reported.kernel_lost = now.kernel_lost,
                    Source::Stream => reported.overruns = now.overruns,
                },
                // Owed again at the next tick, with what was lost since.
                Err(e) => tracing::error!("recording lost Landlock records failed: {e}"),
            }
        }
    }
}

async fn record(d: &Shared, source: Source, count: u64) -> anyhow::Result<()> {
    let mut params = serde_json::Map::new();
    params.insert("source".into(), source.name().into());
    params.insert("lost".into(), count.into());
    let rec = cordon_audit::NewRecord {
        action: Some("contain.events_lost".into()),
        params,
        reason: Some(source.reason().into()),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::ContainRefused)
    };
    d.audit.append(&rec).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counters_that_moved_are_owed_and_the_kernels_wraps() {
        let at = Seen {
            kernel_lost: 97,
            overruns: 0,
        };
        assert!(owed(at, at).is_empty());
        let o = owed(
            at,
            Seen {
                kernel_lost: 100,
                overruns: 2,
            },
        );
        assert_eq!(o.len(), 2);
        assert_eq!(o, vec![(Source::Kernel, 3), (Source::Stream, 2)]);
        let near_top = Seen {
            kernel_lost: u32::MAX - 1,
            overruns: 0,
        };
        let o = owed(
            near_top,
            Seen {
                kernel_lost: 3,
                overruns: 0,
            },
        );
        assert_eq!(o, vec![(Source::Kernel, 5)]);
    }
}
