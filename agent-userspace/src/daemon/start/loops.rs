//! Start-up chores that record what a stopped daemon left, and the loop
//! that removes the cgroups of exited agent instances.
use std::time::Duration;

use crate::daemon::Shared;

/// Approvals pending when a previous daemon stopped can no longer be
/// answered: each is recorded as expired rather than silently dropped.
pub(super) async fn expire_orphaned_approvals(d: &Shared) {
    for info in d.approvals.take_orphans() {
        let rec = cordon_audit::NewRecord {
            agent: Some(info.agent.agent().to_string()),
            instance: Some(info.agent.instance().to_string()),
            chain: Some(info.chain.clone()),
            action: Some(info.action.clone()),
            params: info.params.clone(),
            decision: Some(cordon_audit::Decision::Deny),
            rule: Some(info.rule.clone()),
            reason: Some("approval expired: the daemon restarted while it was pending".into()),
            ..cordon_audit::NewRecord::new(cordon_audit::EventKind::ApprovalExpired)
        };
        if let Err(e) = d.audit.append(&rec).await {
            tracing::error!("recording an expired approval: {e}");
        }
        tracing::warn!(id = %info.id, agent = %info.chain, action = %info.action, "approval expired by a daemon restart");
    }
}

/// Empty instance cgroups are removed once their last process exits.
pub(super) async fn reap_loop(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let d2 = d.clone();
        let removed =
            tokio::task::spawn_blocking(move || d2.registry.tree().reap_empty(&|_| false))
                .await
                .unwrap_or_default();
        for p in &removed {
            tracing::debug!(agent = %p.chain_display(), instance = p.instance(), "instance exited; cgroup removed");
            crate::daemon::jit::revoke(&d, p, "exited");
        }
        if !removed.is_empty() {
            d.registry.rescan();
            crate::daemon::contain_watch::forget_gone(&d);
        }
    }
}
