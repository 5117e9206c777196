//! `cordon run`: ask the daemon to put this process in a fresh agent
//! cgroup, drop to the agent's user, and exec the command. The process that
//! the daemon moves is this one, identified by SO_PEERCRED, so the command
//! starts already confined: no window in which it runs unenforced.
use std::{
    ffi::CString,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};

use super::args::RunArgs;
use crate::{
    cgroup::validate_agent_name,
    cli::userns,
    contain::{fds, host_view, landlock},
    control::{
        client,
        proto::{Request, RunReply},
    },
    paths::Paths,
};

pub fn run_agent(args: RunArgs) -> anyhow::Result<ExitCode> {
    validate_agent_name(&args.agent)?;
    fds::check_stdio(args.allow_socket_stdio)?;
    let program = &args.command[0];
    let Some(resolved) = find_program(program) else {
        eprintln!("cordon: error: command not found: {program}");
        return Ok(ExitCode::from(127));
    };
    let target = target_user(&args)?;
    let root_agent = target.is_none() && Uid::effective().is_root();
    // A root agent runs as root only inside its own user namespace when the
    // host allows one; otherwise it is held by Landlock and the kernel deny
    // list alone, which do not depend on its uid.
    let mapped_uid = (root_agent && userns::available()).then_some(userns::MAPPED_ROOT_UID);
    if root_agent && mapped_uid.is_none() {
        eprintln!(
            "cordon: warning: this host forbids user namespaces; root agent {:?} is contained by Landlock and BPF LSM rules only",
            args.agent
        );
    }

    let uid = target
        .as_ref()
        .map_or(Uid::effective().as_raw(), |u| u.uid.as_raw());
    let cwd = std::env::current_dir().context("reading the working directory")?;

    let paths = Paths::resolve(args.client.state_dir.as_deref());
    let body = client::call(
        &paths.socket,
        &Request::Run {
            agent: args.agent.clone(),
            uid: Some(uid),
            cwd: Some(cwd),
            mapped_uid,
            env: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
        },
        Duration::from_secs(10),
    )?;
    let reply: RunReply =
        serde_json::from_value(body).context("daemon sent an unreadable run reply")?;
    if reply.contain.is_some() {
        private_host_view(&args.agent)?;
    }
    // Built now, while every listed path can still be opened (and after
    // /proc, /dev/pts and /dev/shm were replaced, so rules under them name
    // the agent's own); entered last.
    let landlock = match &reply.contain {
        Some(spec) => Some(landlock::prepare(spec)?),
        None => {
            eprintln!(
                "cordon: warning: containment is off for agent {:?} (policy `contain = \"off\"`)",
                args.agent
            );
            None
        }
    };
    fds::close_inherited(args.preserve_fds)?;

    let mut cmd = std::process::Command::new(&resolved);
    cmd.arg0(program).args(&args.command[1..]);
    for (k, v) in &reply.env {
        cmd.env(k, v);
    }
    cmd.env("CORDON_AGENT", &reply.chain)
        .env("CORDON_INSTANCE", &reply.instance);
    if landlock.is_some() {
        forbid_unwatched_calls(&mut cmd)?;
    }
    if mapped_uid.is_some() {
        let cgroup_mount = crate::cgroup::mount::cgroup2_mount()?;
        return userns::run(cmd, landlock, &cgroup_mount, Path::new(&reply.cgroup));
    }
    match &target {
        Some(user) => drop_to(user, &mut cmd)?,
        None if root_agent => {
            super::root_caps::keep_only_root_work()?;
            forbid_metadata_changes(&mut cmd)?;
        }
        None => {}
    }
    if let Some(prepared) = landlock {
        enter_before_exec(&mut cmd, prepared);
    }
    let err = cmd.exec();
    bail!("exec {}: {err}", resolved.display())
}

/// A contained agent sees only its own processes, IPC objects, shared
/// memory and terminals (`contain::host_view`). Root is needed to set that
/// up; a launch that cannot (not root) says so, and one whose setup fails
/// is refused. A launch from inside an agent keeps its parent's view.
fn private_host_view(agent: &str) -> anyhow::Result<()> {
    if host_view::already_entered()? {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        eprintln!(
            "cordon: warning: `cordon run` is not root, so agent {agent:?} can list the host's processes, read their command lines and reach the host's shared memory and terminals that file modes allow"
        );
        return Ok(());
    }
    host_view::enter().context("giving the agent its own view of the host")
}

/// Enters the Landlock domain as the very last step before exec, after
/// the uid change (registered earlier, so it runs first).
fn enter_before_exec(cmd: &mut std::process::Command, prepared: landlock::Prepared) {
    let mut prepared = Some(prepared);
    // SAFETY: `cordon run` execs without forking, so this runs in the same
    // single-threaded process and may allocate.
    unsafe {
        cmd.pre_exec(move || match prepared.take() {
            Some(p) => p.enter().map_err(std::io::Error::other),
            None => Err(std::io::Error::other(
                "the Landlock domain was already entered",
            )),
        });
    }
}

/// A real-root agent (no user namespace on this host) would own every
/// root-owned file: refuse it chmod, chown and xattr changes altogether.
fn forbid_metadata_changes(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let prog = crate::contain::root_seccomp::program()?;
    // SAFETY: no fork happened (exec in place); applying a filter only
    // makes a prctl/seccomp call.
    unsafe {
        cmd.pre_exec(move || seccompiler::apply_filter(&prog).map_err(std::io::Error::other));
    }
    Ok(())
}

/// A contained agent may not type into its operator's terminal, use the
/// kernel keyrings, open a socket of a family the cgroup hooks never see
/// (vsock to a VM's host) or use io_uring (`contain::agent_seccomp`).
/// Registered before the uid change and Landlock, it runs before them in
/// the child; it refuses neither.
fn forbid_unwatched_calls(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let prog = crate::contain::agent_seccomp::program()?;
    // SAFETY: runs just before exec (in place, or in the root agent's
    // forked child); applying a filter only makes prctl/seccomp calls.
    unsafe {
        cmd.pre_exec(move || seccompiler::apply_filter(&prog).map_err(std::io::Error::other));
    }
    Ok(())
}

/// Who the agent runs as. Root only on explicit request: an agent running
/// as root could detach Cordon's programs.
fn target_user(args: &RunArgs) -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        if args.user.is_some() {
            bail!("--user needs root (run cordon run with sudo)");
        }
        return Ok(None);
    }
    if let Some(name) = &args.user {
        let user = User::from_name(name)
            .with_context(|| format!("looking up user {name:?}"))?
            .with_context(|| format!("no such user: {name}"))?;
        return refuse_root(user, args.allow_root);
    }
    if let Some(uid) = std::env::var("SUDO_UID")
        .ok()
        .and_then(|u| u.parse::<u32>().ok())
    {
        let user = User::from_uid(Uid::from_raw(uid))?
            .with_context(|| format!("no user with uid {uid}"))?;
        return refuse_root(user, args.allow_root);
    }
    if args.allow_root {
        eprintln!(
            "cordon: warning: running agent {:?} as root (--allow-root)",
            args.agent
        );
        return Ok(None);
    }
    bail!(
        "refusing to run agent {:?} as root: use --user USER, run through sudo as a regular user, or pass --allow-root",
        args.agent
    )
}

fn refuse_root(user: User, allow_root: bool) -> anyhow::Result<Option<User>> {
    if user.uid.is_root() {
        if !allow_root {
            bail!("refusing to run an agent as root: pass --allow-root to insist");
        }
        eprintln!("cordon: warning: running agent as root (--allow-root)");
        return Ok(None);
    }
    Ok(Some(user))
}

/// Drops supplementary groups, gid and uid (in that order: after setuid we
/// could no longer change groups) just before exec.
fn drop_to(user: &User, cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let name = CString::new(user.name.clone())?;
    let (uid, gid): (Uid, Gid) = (user.uid, user.gid);
    cmd.env("HOME", &user.dir)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER")
        .env_remove("SUDO_COMMAND");
    // SAFETY: runs in the child between fork and exec; only async-signal-
    // safe syscalls (initgroups may allocate, which glibc tolerates here as
    // std's own Command does for its uid/gid handling).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::initgroups(&name, gid).map_err(std::io::Error::from)?;
            nix::unistd::setgid(gid).map_err(std::io::Error::from)?;
            nix::unistd::setuid(uid).map_err(std::io::Error::from)?;
            if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                return Err(std::io::Error::other("privileges were not dropped"));
            }
            Ok(())
        });
    }
    Ok(())
}

fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return is_executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
