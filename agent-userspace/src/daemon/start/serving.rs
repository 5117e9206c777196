//! What serves once the state is open, and the order it stops in.
//!
//! Serving starts with what a stopped daemon left (kills, containment, JIT
//! tokens, approvals, grants), then the console and the control socket's
//! listener, then the proxy cores and the resolver, then the background
//! loops. Stopping drains connections first (`drain`), then answers DNS
//! queries already taken, keeps the resolved names for the next daemon, and
//! closes the audit log before the cores, so their queued outcomes are written.
use agent_common::ProxyConfig;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::{loops, signals::Stop};
use crate::{
    bpf::contain::ContainEvents,
    control,
    daemon::{Shared, cores::Cores, listeners::Listeners},
    dns,
};

/// How long a stop waits for DNS queries already taken.
const DNS_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) struct Serving {
    cores: Cores,
    /// The accept loops of every core and of the resolver.
    accepts: Vec<JoinHandle<()>>,
    dns_inflight: TaskTracker,
    control: control::server::ControlThread,
}

impl Serving {
    pub(super) async fn start(
        daemon: &Shared,
        listeners: &Listeners,
        contain_events: Option<ContainEvents>,
    ) -> anyhow::Result<Serving> {
        use crate::daemon as d;
        d::kill::reapply(daemon).await;
        d::contain_watch::restore(daemon);
        d::jit::restore(daemon);
        loops::expire_orphaned_approvals(daemon).await;
        // Grants whose time ran out while no daemon was running are recorded
        // before any request can look for one.
        d::grants::lifecycle::sweep(daemon, chrono::Utc::now()).await;
        crate::metrics::spawn(daemon)?;
        // Before the proxy starts: the proxy refuses agents the console's port.
        crate::console::spawn(daemon)?;
        let control = control::server::bind(daemon)?;
        // `listeners` stays open for an upgrade: the serving copies (each
        // core's and the resolver's duplicates) close when their loops stop,
        // these only at exec.
        let mut cores = Cores::start(daemon, &listeners.proxy, daemon.cfg.cores)?;
        let mut accepts = cores.take_accepts();
        let dns_env = d::env::dns_env(daemon);
        let dns_inflight = TaskTracker::new();
        for s in [&listeners.udp4, &listeners.udp6] {
            accepts.push(tokio::spawn(dns::serve(
                dns_env.clone(),
                tokio::net::UdpSocket::from_std(s.try_clone()?)?,
                dns_inflight.clone(),
            )));
        }
        let control = control::server::spawn_thread(daemon.clone(), control)?;
        tokio::spawn(loops::reap_loop(daemon.clone()));
        let landlock_records = d::landlock_audit::start(daemon).map_err(|e| {
            tracing::error!("Landlock refusals will hold but not be recorded: {e:#}");
            format!("{e:#}")
        });
        if daemon.landlock_records.set(landlock_records).is_err() {
            tracing::error!("the Landlock record state was set twice");
        }
        if let Some(events) = contain_events {
            tokio::spawn(d::contain_watch::run(daemon.clone(), events));
        }
        tokio::spawn(d::memory::trim_loop());
        tokio::spawn(d::reload::watch(daemon.clone()));
        tokio::spawn(d::grants::lifecycle::sweep_loop(daemon.clone()));
        tokio::spawn(d::caps::summary::sweep_loop(daemon.clone()));
        tokio::spawn(d::probes::sweep_loop(daemon.clone()));
        Ok(Serving {
            cores,
            accepts,
            dns_inflight,
            control,
        })
    }

    /// How many proxy cores serve.
    pub(super) fn cores(&self) -> usize {
        self.cores.count()
    }

    /// Stops serving. The programs (`ebpf`) are released after the drain
    /// and before the audit log closes; their pins stay, so agents remain
    /// cut off until a daemon is back.
    pub(super) async fn stop(self, daemon: &Shared, stop: &Stop, parent_id: u64, ebpf: aya::Ebpf) {
        let Serving {
            cores,
            accepts,
            dns_inflight,
            control,
        } = self;
        if tokio::task::spawn_blocking(|| control.stop())
            .await
            .is_err()
        {
            tracing::error!("stopping the control thread failed");
        }
        if matches!(stop, Stop::Terminate) {
            // Closed ports would refuse connects; zero ports make the kernel
            // refuse them with EPERM at once, rather than after they queued on
            // a listener about to close. The pins stay: agents remain cut off
            // until a daemon is back. An upgrade keeps the ports: its connects
            // wait in the backlog for the new binary.
            let zeroed = daemon.maps.set_config(ProxyConfig {
                proxy_port: 0,
                dns_port: 0,
                parent_level: daemon.registry.tree().parent_level(),
                parent_id,
            });
            if let Err(e) = zeroed {
                // Still closed: the ports stop listening as this process ends.
                tracing::warn!(
                    "redirect ports not zeroed ({e}); agents' connects are refused by the closed ports instead"
                );
            }
        }
        let drained =
            crate::daemon::drain::drain(&daemon.conns, &accepts, crate::daemon::drain::BOUND).await;
        tracing::info!(
            open = drained.open,
            cut = drained.cut,
            left = drained.left,
            took_ms = drained.took.as_millis() as u64,
            "connections drained"
        );
        // Queries taken before the drain are answered, and their names
        // remembered, before the cache is handed on (bounded: an upstream that
        // does not answer is the agent's resolver timeout either way).
        dns_inflight.close();
        if tokio::time::timeout(DNS_DRAIN, dns_inflight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = dns_inflight.len(),
                "DNS queries still unanswered at the stop; their agents will ask again"
            );
        }
        let paths = &daemon.cfg.paths;
        let _ = std::fs::remove_file(&paths.socket);
        // The next daemon (this binary's successor, or this one restarted)
        // answers for names agents resolved through this one.
        match dns::names_file::save(&daemon.names, &paths.state_dir) {
            Ok(n) => tracing::info!(names = n, "resolved names kept for the next start"),
            Err(e) => tracing::warn!(
                "resolved names not kept ({e}); agents' connects to addresses they resolved \
                 before the stop are refused until they resolve again"
            ),
        }
        drop(ebpf);
        if let Err(e) = daemon.audit.shutdown() {
            tracing::error!("audit log did not drain cleanly: {e}");
        }
        // After the audit log: outcomes the cores still queue are written.
        if tokio::task::spawn_blocking(move || cores.stop())
            .await
            .is_err()
        {
            tracing::error!("stopping the proxy cores failed");
        }
    }
}
