//! Enforcement in the kernel, attached before anything is served: the
//! agents' cgroup parent, the agent-facing sockets, the eBPF programs that
//! redirect to them, and host containment where the kernel allows it.
use agent_common::ProxyConfig;
use anyhow::Context;

use crate::{
    bpf::{self, EnforcementMaps},
    cgroup::{CgroupTree, mount::cgroup2_mount},
    config::DaemonConfig,
    daemon::{contained::KernelLayer, handover, listeners::Listeners},
};

/// What the daemon's shared state keeps of the attached enforcement.
pub(super) struct Enforcement {
    pub tree: CgroupTree,
    pub maps: EnforcementMaps,
    pub proxy_port: u16,
    pub dns_port: u16,
    /// Why contained agents are refused, when containment is missing.
    pub contain_kernel: Result<Box<dyn KernelLayer>, String>,
    pub contain_lsm: Result<(), String>,
}

/// What start-up keeps until the stop: the programs stay loaded while
/// `ebpf` lives, the sockets while `listeners` does.
pub(super) struct Attached {
    pub enforcement: Enforcement,
    pub ebpf: aya::Ebpf,
    pub listeners: Listeners,
    pub contain_events: Option<bpf::contain::ContainEvents>,
    pub parent_id: u64,
}

/// Listeners first (so the ports exist), then the programs (which redirect
/// to them); those of another map ABI are released only after.
pub(super) fn attach(cfg: &DaemonConfig) -> anyhow::Result<Attached> {
    let paths = &cfg.paths;
    let mount = cgroup2_mount()?;
    let tree = CgroupTree::new(mount, &paths.cgroup_parent);
    tree.ensure_parent()?;

    bpf::bpffs::ensure_mounted()?;
    let listeners = listeners(cfg)?;
    let (proxy_port, dns_port) = (listeners.proxy_port(), listeners.dns_port());

    let mut ebpf = bpf::attach_all(tree.parent(), &paths.pin_dir())
        .with_context(|| format!("attaching eBPF programs to {}", tree.parent().display()))?;
    let maps = EnforcementMaps::from_ebpf(&mut ebpf)?;
    // Network enforcement stands on its own; containment may be missing
    // on this kernel, and then contained agents are refused (never started
    // uncontained) while `cordon status` says why.
    let (contain_kernel, contain_events, contain_lsm) =
        match attach_containment(&mut ebpf, &tree, paths) {
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
    Ok(Attached {
        enforcement: Enforcement {
            tree,
            maps,
            proxy_port,
            dns_port,
            contain_kernel,
            contain_lsm,
        },
        ebpf,
        listeners,
        contain_events,
        parent_id,
    })
}

/// The agent-facing sockets, as handed over (or configured when there was
/// no handover, or it named other ports than the config now does).
fn listeners(cfg: &DaemonConfig) -> anyhow::Result<Listeners> {
    let inherited =
        handover::inherited().context("adopting the sockets of the binary this one replaced")?;
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

type KernelContain = (
    Box<dyn KernelLayer>,
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
