//! Why `cordon kill` / `cordon resume` failed. A kill is in force before it
//! is persisted and audited (freezing is the safe direction), so the error
//! for an unrecorded kill says the agent *is* killed, and what was not
//! written; a resume is refused when its record cannot be written.
use crate::{daemon::kill_marks::KillMarksError, killswitch};

#[derive(Debug, thiserror::Error)]
pub enum KillFailed {
    /// The kernel step itself failed: nothing was changed by this call.
    #[error(transparent)]
    Switch(#[from] killswitch::KillError),
    #[error("the kill switch task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Frozen and marked in the kernel kill map, but not (fully) recorded.
    #[error(
        "{scope} is killed (frozen, and marked in the kernel kill map, while this daemon runs), \
         but {}; fix the cause and run the command again",
        list(missing)
    )]
    KilledUnrecorded {
        scope: String,
        missing: Vec<Unrecorded>,
    },
    /// The cut is in force (in memory), but not (fully) recorded.
    #[error(
        "connector {connector} is cut for {agent} (its actions are refused while this daemon \
         runs), but {}; fix the cause and run the command again",
        list(missing)
    )]
    ConnectorCutUnrecorded {
        agent: String,
        connector: String,
        missing: Vec<Unrecorded>,
    },
    /// Nothing was lifted: a resume without its record does not happen.
    #[error(
        "{scope} was not resumed: its audit record could not be written ({source}); \
         it stays killed"
    )]
    ResumeUnaudited {
        scope: String,
        source: Box<cordon_audit::AuditError>,
    },
    /// Lifted now, but its mark is still on disk.
    #[error(
        "{scope} is resumed, but its kill mark could not be lifted on disk ({source}): \
         a daemon restart would kill it again; fix the cause and resume it again"
    )]
    ResumedMarkKept {
        scope: String,
        source: Box<KillMarksError>,
    },
}

/// One record of a kill that was not written.
#[derive(Debug, thiserror::Error)]
pub enum Unrecorded {
    #[error(
        "the kill mark could not be persisted, so a daemon restart would not re-apply it ({0})"
    )]
    Mark(KillMarksError),
    #[error("the kill mark could not be persisted: the writing task failed ({0})")]
    MarkTask(tokio::task::JoinError),
    #[error("its audit record could not be written ({0})")]
    Audit(cordon_audit::AuditError),
    /// The minted credentials were withdrawn, but the trail does not say so.
    #[error("the revocation of its minted credentials could not be recorded ({0})")]
    Revocation(cordon_audit::AuditError),
}

fn list(missing: &[Unrecorded]) -> String {
    missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecorded_kill_says_it_is_in_force_and_what_is_missing() {
        let e = KillFailed::KilledUnrecorded {
            scope: "bot".into(),
            missing: vec![
                Unrecorded::Mark(KillMarksError::Read {
                    path: "/state/kills.json".into(),
                    source: std::io::Error::other("injected"),
                }),
                Unrecorded::Audit(cordon_audit::AuditError::Closed),
            ],
        }
        .to_string();
        assert!(e.starts_with("bot is killed (frozen"), "{e}");
        assert!(e.contains("would not re-apply it"), "{e}");
        assert!(e.contains("audit record could not be written"), "{e}");
    }
}
