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
use std::{os::unix::fs::PermissionsExt, sync::Arc, time::Duration};

use agent_common::ProxyConfig;
use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use cordon_connectors::ConnectorSet;
use cordon_tls::{CertAuthority, UpstreamTls};

use super::{
    Daemon, Shared, agents::Registry, approvals, decide::PolicyHandle, listeners::Listeners, store,
};
use crate::{
    bpf::{self, EnforcementMaps},
    cgroup::{CgroupTree, mount::cgroup2_mount},
    config::DaemonConfig,
    control, dns, proxy,
};

pub fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    if let Some(file) = &cfg.config_file {
        super::strict_modes::check_tree(file).context("refusing the config file")?;
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("cordon daemon must run as root: it attaches eBPF programs and manages cgroups");
    }
    harden_process();
    // Before any thread starts: they inherit it.
    super::sched::apply(cfg.slice);
    raise_fd_limit();
    super::memory::tune_allocators();
    let exe = super::handover::Exe::capture()?;
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

/// No core dumps: they would hold the CA key and vault secrets.
fn harden_process() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn make_dir(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

async fn serve(cfg: DaemonConfig, exe: super::handover::Exe) -> anyhow::Result<()> {
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
    // Everything the daemon creates is private unless made public on
    // purpose (the socket, the CA certificate and bundle).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // A namespaced daemon keeps its socket inside the state dir, so agents
    // (which may launch sub-agents) need to traverse it: 0711 lets them
    // reach run/ without listing or reading anything else.
    let state_mode = if paths.run_dir.starts_with(&paths.state_dir) {
        0o711
    } else {
        0o700
    };
    make_dir(&paths.state_dir, state_mode)?;
    make_dir(&paths.run_dir, 0o755)?;

    let mount = cgroup2_mount()?;
    let tree = CgroupTree::new(mount, &paths.cgroup_parent);
    tree.ensure_parent()?;

    bpf::bpffs::ensure_mounted()?;
    let listeners = listeners(&cfg)?;
    let (proxy_port, dns_port) = (listeners.proxy_port(), listeners.dns_port());

    let mut ebpf = bpf::attach_all(tree.parent(), &paths.pin_dir())
        .with_context(|| format!("attaching eBPF programs to {}", tree.parent().display()))?;
    let maps = EnforcementMaps::from_ebpf(&mut ebpf)?;
    // Network enforcement stands on its own; containment may be missing
    // on this kernel, and then contained agents are refused (never started
    // uncontained) while `cordon status` says why.
    let (contain_kernel, contain_events, contain_lsm) =
        match attach_containment(&mut ebpf, &tree, &paths) {
            Ok((maps, events, lsm)) => (Ok(maps), Some(events), lsm),
            Err(e) => {
                tracing::error!(
                    "host containment unavailable, contained agents will be refused: {e:#}"
                );
                (Err(format!("{e:#}")), None, Err("not attempted".into()))
            }
        };
    let parent_id = crate::cgroup::tree::cgroup_id(tree.parent())?;
    maps.set_config(ProxyConfig {
        proxy_port,
        dns_port,
        parent_level: tree.parent_level(),
        parent_id,
    })?;
    retire_other_versions(&paths.pin_dir());

    let policy = PolicyHandle::load(&cfg.policies);
    let connectors = load_connectors(&cfg.policies.join("connectors"))?;
    let ca = CertAuthority::load_or_create(&paths.ca_dir).context("loading the Cordon CA")?;
    publish_agent_trust(&ca, &paths)?;
    let upstream_tls =
        Arc::new(UpstreamTls::new(&cfg.upstream_ca).context("building upstream TLS trust")?);
    let vault_key = vault_key(&paths)?;
    let db = Arc::new(
        open_database(&paths.db)
            .with_context(|| format!("opening the database {}", paths.db.display()))?,
    );
    let audit_cfg = cordon_audit::AuditConfig {
        wal: Some(paths.audit_wal.clone()),
        ..cfg.audit.clone()
    };
    let audit =
        cordon_audit::AuditLog::open(db.clone(), audit_cfg).context("opening the audit log")?;
    let reconciled = cordon_audit::reconcile_outcomes(&audit)
        .await
        .context("recording the outcome of decisions the last run left open")?;
    crate::metrics::global().record_outcomes(&reconciled.written);
    let _forwarder = start_forwarder(&audit, cfg.audit_forward.as_ref())?;
    let vault =
        Arc::new(cordon_vault::Vault::open(db.clone(), vault_key).context("opening the vault")?);
    let kills = open_kill_marks(&paths, &store::Store::new(db.clone()))?;
    let jit = super::jit::build(&cfg, &upstream_tls)?;
    let grants = super::grants::Grants::load(store::Store::new(db.clone()))
        .context("loading the standing grants")?;
    let daemon: Shared = Arc::new(Daemon {
        registry: Registry::new(tree),
        maps,
        policy,
        connectors: ArcSwap::from_pointee(connectors),
        names: remembered_names(&paths.state_dir),
        ca,
        upstream_tls,
        pools: proxy::upstream::PoolSet::new(cfg.cores),
        audit,
        kills,
        approvals: approvals::Approvals::new(store::Store::new(db.clone())),
        grants,
        conns: Arc::default(),
        caps: super::caps::Caps::new(cfg.caps, cap_budget(&cfg)),
        probes: Default::default(),
        stats: Default::default(),
        vault,
        jit,
        proxy_port,
        dns_port,
        contain_kernel,
        contain_lsm,
        landlock_records: std::sync::OnceLock::new(),
        contained: Default::default(),
        console_addr: std::sync::OnceLock::new(),
        cfg,
    });

    super::kill::reapply(&daemon).await;
    super::contain_watch::restore(&daemon);
    super::jit::restore(&daemon);
    expire_orphaned_approvals(&daemon).await;
    // Grants whose time ran out while no daemon was running are recorded
    // before any request can look for one.
    super::grants::lifecycle::sweep(&daemon, chrono::Utc::now()).await;
    crate::metrics::spawn(&daemon)?;
    // Before the proxy starts: the proxy refuses agents the console's port.
    crate::console::spawn(&daemon)?;
    let control = control::server::bind(&daemon)?;
    // `listeners` stays open for an upgrade: the serving copies (each
    // core's and the resolver's duplicates) close when their loops stop,
    // these only at exec.
    let mut cores = super::cores::Cores::start(&daemon, &listeners.proxy, daemon.cfg.cores)?;
    let mut serving = cores.take_accepts();
    let dns_env = super::env::dns_env(&daemon);
    let dns_inflight = tokio_util::task::TaskTracker::new();
    for s in [&listeners.udp4, &listeners.udp6] {
        serving.push(tokio::spawn(dns::serve(
            dns_env.clone(),
            tokio::net::UdpSocket::from_std(s.try_clone()?)?,
            dns_inflight.clone(),
        )));
    }
    let control = control::server::spawn_thread(daemon.clone(), control)?;
    tokio::spawn(reap_loop(daemon.clone()));
    let landlock_records = super::landlock_audit::start(&daemon).map_err(|e| {
        tracing::error!("Landlock refusals will hold but not be recorded: {e:#}");
        format!("{e:#}")
    });
    if daemon.landlock_records.set(landlock_records).is_err() {
        tracing::error!("the Landlock record state was set twice");
    }
    if let Some(events) = contain_events {
        tokio::spawn(super::contain_watch::run(daemon.clone(), events));
    }
    tokio::spawn(super::memory::trim_loop());
    tokio::spawn(super::reload::watch(daemon.clone()));
    tokio::spawn(super::grants::lifecycle::sweep_loop(daemon.clone()));
    tokio::spawn(super::caps::summary::sweep_loop(daemon.clone()));
    tokio::spawn(super::probes::sweep_loop(daemon.clone()));

    super::mark_serving();
    tracing::info!(
        proxy_port,
        dns_port,
        cores = cores.count(),
        listener_pairs = listeners.proxy.len(),
        cgroup = %daemon.registry.tree().parent().display(),
        socket = %paths.socket.display(),
        "cordon daemon ready"
    );
    tokio::spawn(reload_on_hangup(daemon.clone(), hangup, notifier.clone()));
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
    let drained = super::drain::drain(&daemon.conns, &serving, super::drain::BOUND).await;
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
    if let Stop::Upgrade(version) = stop {
        tracing::info!(path = %exe.path.display(), %version, "handing over to the installed binary; enforcement stays pinned");
        return Err(super::handover::exec(&exe, &listeners).context("upgrading in place"));
    }
    tracing::info!("cordon daemon stopped; enforcement stays pinned");
    Ok(())
}

/// How long a stop waits for DNS queries already taken.
const DNS_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The names a previous daemon resolved for agents, still live. A file that
/// cannot be read leaves the cache empty: connects to those addresses are
/// refused (as unresolved) until the agent resolves again.
fn remembered_names(state_dir: &std::path::Path) -> dns::NameCache {
    let names = dns::NameCache::default();
    match dns::names_file::restore(&names, state_dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(names = n, "took the resolved names the last daemon kept"),
        Err(e) => tracing::warn!("the resolved names the last daemon kept are unreadable: {e}"),
    }
    names
}

/// The agent-facing sockets, as handed over (or configured when there was
/// no handover, or it named other ports than the config now does).
fn listeners(cfg: &DaemonConfig) -> anyhow::Result<Listeners> {
    let inherited = super::handover::inherited()
        .context("adopting the sockets of the binary this one replaced")?;
    if let Some(mut l) = inherited {
        let wanted = |configured: u16, have: u16| configured == 0 || configured == have;
        if wanted(cfg.proxy_port, l.proxy_port()) && wanted(cfg.dns_port, l.dns_port()) {
            let handed = l.proxy.len();
            let growth = l
                .join_to(cfg.cores)
                .context("adding proxy listeners for this image's cores")?;
            tracing::info!(
                proxy_port = l.proxy_port(),
                dns_port = l.dns_port(),
                handed_over_pairs = handed,
                cores = cfg.cores,
                ?growth,
                "adopted the listeners of the binary this one replaced"
            );
            return Ok(l);
        }
        tracing::warn!(
            "the configured ports differ from those handed over; connects queued during the \
             upgrade are reset"
        );
    }
    Listeners::bind(cfg.proxy_port, cfg.dns_port, cfg.cores)
}

/// Other map ABI versions' programs stay attached (enforcing) until this
/// version's are attached and configured, then are released. Failing to
/// release them leaves agents refused by the old programs, never free.
fn retire_other_versions(pin_dir: &std::path::Path) {
    match bpf::load::retire_other_versions(pin_dir) {
        Ok(dirs) => {
            for dir in dirs {
                tracing::info!(dir = %dir.display(), "released the programs of another map ABI version");
            }
        }
        Err(e) => tracing::error!(
            "cannot release the programs of another map ABI version (agents' connects may be \
             refused until `cordon cleanup`): {e}"
        ),
    }
}

/// `[audit.forward]`: ships the trail to a syslog collector for as long as
/// the returned handle lives.
fn start_forwarder(
    audit: &cordon_audit::AuditLog,
    cfg: Option<&cordon_audit::forward::ForwardConfig>,
) -> anyhow::Result<Option<cordon_audit::forward::Forwarder>> {
    let Some(cfg) = cfg else { return Ok(None) };
    let f = cordon_audit::forward::Forwarder::start(audit.clone(), cfg.clone())
        .context("starting [audit.forward]")?;
    crate::metrics::global().watch_forwarder(f.stats());
    Ok(Some(f))
}

/// Loads the kill marks, moving any an older daemon kept in the database
/// into the file (the database copy is deleted only once the file has it).
fn open_kill_marks(
    paths: &crate::paths::Paths,
    legacy: &store::Store,
) -> anyhow::Result<super::kill_marks::KillMarks> {
    let marks = super::kill_marks::KillMarks::open(&paths.kill_marks)?;
    for (key, value) in legacy.legacy_kills()? {
        if !marks.contains(&key) {
            let mark = super::kill_marks::parse_legacy(&value).with_context(|| {
                format!("the kill mark for {key} kept in the database is unreadable")
            })?;
            marks.put(&key, mark)?;
        }
        legacy.del_legacy_kill(&key)?;
    }
    Ok(marks)
}

/// Connector files are optional (an empty set maps everything to
/// `http.request`), but a broken one stops the start: silently ignoring it
/// would change what policy sees.
fn load_connectors(dir: &std::path::Path) -> anyhow::Result<ConnectorSet> {
    if !dir.exists() {
        tracing::warn!(dir = %dir.display(), "no connector directory: every request is http.request");
        return Ok(ConnectorSet::from_sources(Vec::new())?);
    }
    Ok(ConnectorSet::load_dir(dir)?)
}

/// Agents must be able to read the CA (not its key): it is copied, with
/// the bundle of system roots, into the world-readable run directory.
fn publish_agent_trust(ca: &CertAuthority, paths: &crate::paths::Paths) -> anyhow::Result<()> {
    std::fs::write(paths.agent_ca_cert(), ca.ca_pem())
        .with_context(|| format!("writing {}", paths.agent_ca_cert().display()))?;
    std::fs::set_permissions(
        paths.agent_ca_cert(),
        std::fs::Permissions::from_mode(0o644),
    )?;
    ca.write_agent_bundle(&paths.agent_ca_bundle())
        .with_context(|| format!("writing {}", paths.agent_ca_bundle().display()))?;
    Ok(())
}

/// The daemon's database. redb's page cache defaults to 1 GiB, which a busy
/// audit log fills (RSS grew to ~1 GB in the benchmark). Audit writes only
/// touch the rightmost pages, the vault is small, and a miss is a read from
/// the kernel's page cache: 4 MiB is plenty.
pub fn open_database(path: &std::path::Path) -> Result<redb::Database, redb::DatabaseError> {
    redb::Builder::new()
        .set_cache_size(4 * 1024 * 1024)
        .create(path)
}

/// Every agent connection is two sockets here (the agent's and the
/// upstream's). The limit is raised to 2^20 (with CAP_SYS_RESOURCE), else the
/// soft limit to the hard one; a low result is said at start, since past it
/// new agent connections wait in the accept queue.
fn raise_fd_limit() {
    const WANT: libc::rlim_t = 1 << 20;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: WANT.max(lim.rlim_cur),
            rlim_max: WANT.max(lim.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < 65_536 {
            tracing::warn!(
                limit = lim.rlim_cur,
                agent_connections = lim.rlim_cur / 2,
                "low open-file limit (raising it needs CAP_SYS_RESOURCE): past about this many \
                 agent connections at once, new ones wait"
            );
        }
    }
}

/// The descriptor budget for agent connections, from the open-file limit
/// `raise_fd_limit` left (docs/config.md, "Caps"), said once at start.
fn cap_budget(cfg: &DaemonConfig) -> super::caps::Budget {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid struct. On failure the budget plans
    // for the smallest limit Linux starts processes with.
    let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let b = super::caps::Budget::plan(nofile, cfg.caps.reserve_fds);
    tracing::info!(
        open_file_limit = b.nofile,
        reserved = b.reserve,
        agent_connections = b.daemon_connections,
        per_agent_ceiling = b.agent_ceiling,
        default_cap = cfg.caps.connections,
        agents_at_default_cap = b.agents_at_cap(cfg.caps.connections),
        "connection budget"
    );
    if cfg.caps.connections > b.agent_ceiling {
        tracing::warn!(
            cap = cfg.caps.connections,
            ceiling = b.agent_ceiling,
            "[caps] connections is above a quarter of the daemon's connection budget: agents are held to the ceiling"
        );
    }
    b
}

/// The vault's master key: a systemd credential when present, else the
/// root-only key file in the state dir (created on first start). It is
/// checked against the database through a read-only handle first, so a
/// wrong key stops the start with one line and leaves the file
/// byte-for-byte unchanged.
pub fn vault_key(paths: &crate::paths::Paths) -> anyhow::Result<cordon_vault::MasterKey> {
    let source = cordon_vault::KeySource::detect(paths.state_dir.join("vault.key"));
    let key =
        cordon_vault::MasterKey::load(&source, true).context("loading the vault master key")?;
    cordon_vault::verify_key_read_only(&paths.db, &key).context("opening the vault")?;
    Ok(key)
}

/// Approvals pending when a previous daemon stopped can no longer be
/// answered: each is recorded as expired rather than silently dropped.
async fn expire_orphaned_approvals(d: &Shared) {
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

/// `systemctl reload cordon`: a broken policy is logged with its file and
/// line, and the policy in force stays.
async fn reload_on_hangup(
    d: Shared,
    mut hangup: tokio::signal::unix::Signal,
    n: crate::notify::Notifier,
) {
    while hangup.recv().await.is_some() {
        crate::notify::log_failure(n.reloading());
        let status = match super::reload::reload_all(&d, "SIGHUP").await {
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
enum Stop {
    Terminate,
    /// The new binary's `--version` line.
    Upgrade(String),
}

struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            usr2: signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?,
        })
    }

    /// Waits for SIGTERM, SIGINT, or a SIGUSR2 whose new binary runs
    /// (one that does not is logged, and the daemon keeps serving).
    async fn next(&mut self, exe: &super::handover::Exe, n: &crate::notify::Notifier) -> Stop {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); return Stop::Terminate }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping"); return Stop::Terminate }
                _ = self.usr2.recv() => {}
            }
            let probe = exe.clone();
            match tokio::task::spawn_blocking(move || super::handover::preflight(&probe)).await {
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

type KernelContain = (
    Box<dyn super::contained::KernelLayer>,
    bpf::contain::ContainEvents,
    Result<(), String>,
);

fn attach_containment(
    ebpf: &mut aya::Ebpf,
    tree: &CgroupTree,
    paths: &crate::paths::Paths,
) -> anyhow::Result<KernelContain> {
    // The BPF LSM layer (a second deny list and per-call observers) is an
    // addition where the kernel allows trampoline programs; Landlock and
    // the cgroup socket hooks carry containment without it.
    // Required: the pathname unix-socket allowlist (Landlock cannot do it).
    // And the device allowlist: device nodes by number, whatever the uid.
    bpf::load::attach_required_hooks(ebpf, tree.parent(), &paths.pin_dir())
        .context("attaching the cgroup unix-socket and device hooks")?;
    let lsm = match bpf::load::attach_containment(ebpf, tree.parent(), &paths.pin_dir()) {
        Ok(()) => {
            tracing::info!("BPF LSM containment layer attached");
            Ok(())
        }
        Err(e) => {
            // The detail is in `cordon status`; the log line stays short.
            tracing::warn!(
                "BPF LSM containment layer not attached (see `cordon status`); Landlock and the cgroup hooks hold agents alone"
            );
            Err(e.to_string())
        }
    };
    let maps = bpf::contain::ContainMaps::from_ebpf(ebpf)?;
    let events = bpf::contain::ContainEvents::from_ebpf(ebpf)?;
    Ok((Box::new(maps), events, lsm))
}

/// Empty instance cgroups are removed once their last process exits.
async fn reap_loop(d: Shared) {
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
            super::jit::revoke(&d, p, "exited");
        }
        if !removed.is_empty() {
            d.registry.rescan();
            super::contain_watch::forget_gone(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_marks_an_older_daemon_kept_in_the_database_move_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::paths::Paths::for_state_dir(dir.path());
        let db = Arc::new(open_database(&paths.db).unwrap());
        let legacy = store::Store::new(db);
        legacy
            .put_legacy_kill(
                "old-bot",
                r#"{"scope":{"Agent":"old-bot"},"reason":"r","by":"root","at":"2026-01-01T00:00:00Z"}"#,
            )
            .unwrap();
        let marks = open_kill_marks(&paths, &legacy).unwrap();
        assert!(marks.contains("old-bot"));
        assert!(legacy.legacy_kills().unwrap().is_empty());
        // On disk, not only in memory.
        let again = crate::daemon::kill_marks::KillMarks::open(&paths.kill_marks).unwrap();
        assert!(again.contains("old-bot"));
    }
}
