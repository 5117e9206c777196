//! The daemon process's own limits, set before any thread starts (threads
//! inherit them): no core dumps, and as many descriptors as it may have.
use crate::config::DaemonConfig;

/// No core dumps: they would hold the CA key and vault secrets.
pub(super) fn harden_process() {
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

/// Every agent connection is two sockets here (the agent's and the
/// upstream's). The limit is raised to 2^20 (with CAP_SYS_RESOURCE), else the
/// soft limit to the hard one; a low result is said at start, since past it
/// new agent connections wait in the accept queue.
pub(super) fn raise_fd_limit() {
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
pub(super) fn cap_budget(cfg: &DaemonConfig) -> crate::daemon::caps::Budget {
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
    let b = crate::daemon::caps::Budget::plan(nofile, cfg.caps.reserve_fds);
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
