//! Serving the control socket. Each connection carries one request; the
//! caller is identified by SO_PEERCRED and by the cgroup its pid is in.
use std::{os::unix::fs::PermissionsExt, path::Path};

use anyhow::Context;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};

use super::proto::{Reply, Request, StatusReply};
use crate::{cgroup::AgentPath, daemon::Shared};

/// The longest request read: a run request carries the launcher's whole
/// environment.
const MAX_REQUEST: u64 = 1 << 20;

/// Binds the socket, replacing a stale one left by a killed daemon but
/// never one a live daemon is serving.
pub fn bind(d: &Shared) -> anyhow::Result<std::os::unix::net::UnixListener> {
    let path = &d.cfg.paths.socket;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another cordon daemon is serving {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    l.set_nonblocking(true)
        .with_context(|| format!("setting {} non-blocking", path.display()))?;
    set_socket_mode(path, d.cfg.socket_group.as_deref())?;
    Ok(l)
}

/// Host installs restrict the socket to root and the `cordon` group; a
/// namespaced (test) daemon lets any local user connect, since every call
/// is authorised by peer credentials anyway.
fn set_socket_mode(path: &Path, group: Option<&str>) -> anyhow::Result<()> {
    // A configured group that cannot be found stops the start: quietly serving the socket
    // without the group would leave the operators the config names locked out, with nothing
    // saying why.
    let mode = match group {
        Some(name) => {
            let g = nix::unistd::Group::from_name(name)
                .with_context(|| format!("socket_group {name:?}: looking the group up"))?
                .with_context(|| {
                    format!(
                        "socket_group {name:?}: no such group (create it, or remove the setting)"
                    )
                })?;
            nix::unistd::chown(path, None, Some(g.gid))?;
            0o660
        }
        None => 0o666,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The control plane's thread. `stop` ends it and drops everything it held,
/// so the daemon's state (the database among it) closes cleanly at exit.
pub struct ControlThread {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: std::thread::JoinHandle<()>,
}

impl ControlThread {
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.handle.join().is_err() {
            tracing::error!("the control thread panicked");
        }
    }
}

/// Serves the control socket on a thread of its own, with its own runtime
/// and a higher scheduling priority than the data plane: `cordon kill` must
/// be picked up at once while the proxy keeps both cores busy, not wait for
/// a worker to come round to the socket.
pub fn spawn_thread(
    d: Shared,
    listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<ControlThread> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .thread_name("cordon-control-blocking")
        .build()
        .context("starting the control runtime")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("cordon-control".into())
        .spawn(move || {
            raise_priority();
            rt.block_on(async move {
                match UnixListener::from_std(listener) {
                    Ok(l) => {
                        tokio::select! {
                            () = serve(d, l) => {}
                            _ = stopped => {}
                        }
                    }
                    Err(e) => tracing::error!("control socket: {e}"),
                }
            });
            // Dropping the runtime here drops every connection task and its
            // handle on the daemon's state.
            drop(rt);
        })
        .context("starting the control thread")?;
    Ok(ControlThread { stop, handle })
}

/// Nice -10 for the calling thread; only a warning when not allowed (the
/// control plane still works, it just competes evenly with the proxy).
fn raise_priority() {
    // SAFETY: plain syscalls with valid arguments. On Linux, PRIO_PROCESS
    // with a thread id sets that thread's nice value only.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10)
    };
    if rc != 0 {
        tracing::warn!(
            "control thread keeps the default priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

async fn serve(d: Shared, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(d.clone(), stream));
            }
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Who is calling, as the kernel says.
#[derive(Debug, Clone)]
pub struct Caller {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The managed instance the caller runs in, if any.
    pub agent: Option<AgentPath>,
}

async fn handle(d: Shared, stream: UnixStream) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("control: no peer credentials: {e}");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A run request carries the launcher's environment.
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::err(format!("malformed request: {e}")),
        Ok(req) => {
            let Some(pid) = cred.pid() else {
                let _ =
                    write_reply(&mut write, &Reply::err("caller has no pid (SO_PEERCRED)")).await;
                return;
            };
            let agent = d.registry.tree().locate_pid(pid).ok().flatten();
            let caller = Caller {
                pid,
                uid: cred.uid(),
                gid: cred.gid(),
                agent,
            };
            if super::audit_ops::is_stream(&req) {
                super::audit_ops::stream(&d, &caller, req, &mut write).await;
                return;
            }
            dispatch(&d, &caller, req).await
        }
    };
    let _ = write_reply(&mut write, &reply).await;
}

async fn write_reply(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut buf = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    buf.push(b'\n');
    w.write_all(&buf).await
}

async fn dispatch(d: &Shared, caller: &Caller, req: Request) -> Reply {
    if req.is_operator_only() {
        if let Some(agent) = &caller.agent {
            tracing::warn!(
                op = req.name(),
                agent = %agent.chain_display(),
                pid = caller.pid,
                uid = caller.uid,
                "control: operator operation refused to a caller inside an agent cgroup"
            );
            super::ops::audit_refusal(d, caller, req.name(), agent).await;
            return Reply::err(format!(
                "{} refused: the caller runs inside agent {} and agents may not operate Cordon",
                req.name(),
                agent.chain_display()
            ));
        }
        if caller.uid != 0 && !in_operator_group(d, caller.gid) {
            return Reply::err(format!(
                "{} refused: operator operations need root or the socket's group",
                req.name()
            ));
        }
    }
    match req {
        Request::Status => Reply::ok(StatusReply {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            proxy_port: d.proxy_port,
            dns_port: d.dns_port,
            policy_version: d.policy.version(),
            cgroup_parent: d.registry.tree().parent().display().to_string(),
            containment: containment_status(d),
            console: crate::console::serve::status_name(d),
            serving_since_ms: crate::daemon::serving_since_ms(),
            upgrades_in_place: true,
        }),
        Request::Run {
            agent,
            uid,
            cwd,
            mapped_uid,
            env,
        } => {
            let req = crate::daemon::launch::RunRequest {
                agent,
                uid,
                cwd,
                mapped_uid,
                env,
            };
            match crate::daemon::launch::launch(d, caller, req).await {
                Ok(reply) => Reply::ok(reply),
                Err(e) => Reply::err(e.to_string()),
            }
        }
        Request::Ps => super::ops::ps(d),
        Request::AuditVerify => super::audit_ops::verify(d).await,
        Request::PolicyReload => {
            match crate::daemon::reload::reload_all(d, "cordon policy reload").await {
                Ok(v) => Reply::ok(serde_json::json!({ "version": v })),
                Err(e) => Reply::err(format!(
                    "policy not reloaded, the previous one stays in force: {e}"
                )),
            }
        }
        other => super::ops::operator(d, caller, other).await,
    }
}

/// Landlock's ABI, whether the BPF LSM is active, and whether the kernel
/// half of containment is attached (or why not).
fn containment_status(d: &Shared) -> serde_json::Value {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let abi = crate::contain::landlock::abi_version();
    serde_json::json!({
        "landlock_abi": abi,
        "landlock": abi >= 6,
        "bpf_lsm": crate::bpf::load::lsm_listed(&lsm, "bpf"),
        "kernel_layer": match &d.contain_kernel {
            Ok(_) => "attached".to_string(),
            Err(why) => format!("unavailable: {why}"),
        },
        "landlock_records": match d.landlock_records.get() {
            Some(Ok(())) => "recorded".to_string(),
            Some(Err(why)) => format!("not recorded: {why}"),
            None => "starting".to_string(),
        },
        "bpf_lsm_layer": match &d.contain_lsm {
            Ok(()) => "attached".to_string(),
            Err(why) => format!("not attached: {why}"),
        },
        "user_namespaces": std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .map(|s| s.trim() != "0")
            .unwrap_or(false),
    })
}

/// Members of the configured socket group (`cordon` on a host install) may
/// operate Cordon without being root.
fn in_operator_group(d: &Shared, gid: u32) -> bool {
    d.cfg
        .socket_group
        .as_deref()
        .and_then(|g| nix::unistd::Group::from_name(g).ok().flatten())
        .is_some_and(|g| g.gid.as_raw() == gid)
}
