//! Start-up order matters: listeners first (so the ports exist; handed
//! over by the binary this one replaced, when it was an upgrade), then the
//! programs (which redirect to them; those of another map ABI are released
//! only after), then the control socket (so nobody launches an agent
//! before enforcement is in place).
//!
//! Stopping drains first (`drain`). SIGTERM then leaves the pinned
//! programs refusing agents' connects until a daemon is back; SIGUSR2
//! execs the binary installed at the daemon's path, handing it the
//! agent-facing sockets (`handover`).
//!
//! `serve` reads top to bottom as the daemon's life: `kernel` attaches
//! enforcement, `state` opens what the daemon holds, `serving` starts the
//! proxy, the resolver and the control socket and later stops them,
//! `signals` says when.
mod kernel;
mod limits;
mod loops;
mod serving;
mod signals;
mod state;

use anyhow::{Context, bail};

use self::{
    serving::Serving,
    signals::{Stop, StopSignals},
};
use super::handover;
use crate::config::DaemonConfig;

pub use state::{open_database, vault_key};

pub fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    if let Some(file) = &cfg.config_file {
        super::strict_modes::check_tree(file).context("refusing the config file")?;
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("cordon daemon must run as root: it attaches eBPF programs and manages cgroups");
    }
    limits::harden_process();
    // Before any thread starts: they inherit it.
    super::sched::apply(cfg.slice);
    limits::raise_fd_limit();
    super::memory::tune_allocators();
    let exe = handover::Exe::capture()?;
    // The main runtime: start-up, signals, DNS and the background loops.
    // The proxy runs on cores of its own (`cores`), the control socket on
    // its own thread (`control::server`); see docs/architecture.md.
    let rt = tokio::runtime::Builder::new_current_thread()
        .on_thread_park(super::memory::collect_on_park)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg, exe))
}

async fn serve(cfg: DaemonConfig, exe: handover::Exe) -> anyhow::Result<()> {
    let notifier = crate::notify::Notifier::from_env();
    // Installed first: the default action of SIGHUP and SIGUSR2 would end
    // the daemon.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let mut stops = StopSignals::install()?;
    if let Some(every) = notifier.watchdog_ping_interval() {
        tokio::spawn(crate::notify::watchdog_loop(notifier.clone(), every));
    }
    crate::notify::log_failure(notifier.status("attaching enforcement"));
    let paths = cfg.paths.clone();
    state::make_dirs(&paths)?;
    let kernel::Attached {
        enforcement,
        ebpf,
        listeners,
        contain_events,
        parent_id,
    } = kernel::attach(&cfg)?;
    let (proxy_port, dns_port) = (enforcement.proxy_port, enforcement.dns_port);
    let (daemon, _forwarder) = state::assemble(cfg, enforcement).await?;
    let serving = Serving::start(&daemon, &listeners, contain_events).await?;

    super::mark_serving();
    tracing::info!(
        proxy_port,
        dns_port,
        cores = serving.cores(),
        listener_pairs = listeners.proxy.len(),
        cgroup = %daemon.registry.tree().parent().display(),
        socket = %paths.socket.display(),
        "cordon daemon ready"
    );
    tokio::spawn(signals::reload_on_hangup(
        daemon.clone(),
        hangup,
        notifier.clone(),
    ));
    crate::notify::log_failure(notifier.ready(&format!(
        "enforcing; proxy port {proxy_port}, dns port {dns_port}, policy {}",
        daemon.policy.version()
    )));
    let stop = stops.next(&exe, &notifier).await;
    match stop {
        Stop::Terminate => crate::notify::log_failure(notifier.stopping()),
        Stop::Upgrade(ref version) => {
            crate::notify::log_failure(notifier.reloading());
            crate::notify::log_failure(notifier.status(&format!("upgrading to {version}")));
        }
    }
    serving.stop(&daemon, &stop, parent_id, ebpf).await;
    if let Stop::Upgrade(version) = stop {
        tracing::info!(path = %exe.path.display(), %version, "handing over to the installed binary; enforcement stays pinned");
        return Err(handover::exec(&exe, &listeners).context("upgrading in place"));
    }
    tracing::info!("cordon daemon stopped; enforcement stays pinned");
    Ok(())
}
