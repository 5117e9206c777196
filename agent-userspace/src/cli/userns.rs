//! Root agents get no real root. `cordon run --allow-root` forks: the child
//! enters new user, mount and cgroup namespaces, where its uid 0 is an
//! unprivileged uid on the host; the parent stays behind as a plain
//! supervisor that writes the id maps, forwards signals and reports the
//! exit status.
//!
//! Inside, the agent is root over what it owns (a scratch root it builds,
//! ports above 1024 in its own namespaces) and nobody over the host: every
//! root-owned file appears owned by an unmapped user, its cgroup namespace
//! makes its own instance the root of a read-only cgroup2 mount, and the
//! Landlock domain and kernel deny list apply as to any agent.
use std::{
    os::fd::{AsFd, OwnedFd},
    path::Path,
    process::{Command, ExitCode},
};

use anyhow::{Context, bail};
use nix::{
    fcntl::OFlag,
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
    sys::{
        signal::{Signal, kill},
        wait::{WaitStatus, waitpid},
    },
    unistd::{ForkResult, Gid, Pid, Uid, fork, pipe2, read, setresgid, setresuid, write},
};

use crate::contain::landlock::Prepared;

/// The host uid a root agent's uid 0 maps to: `nobody`, which owns nothing
/// Cordon or the host cares about.
pub const MAPPED_ROOT_UID: u32 = 65_534;

/// Whether this host lets a process create a user namespace (the sysctl
/// `user.max_user_namespaces`, an LSM or a seccomp profile may forbid it).
/// Tried in a throwaway child so this process stays as it is.
pub fn available() -> bool {
    // SAFETY: `cordon run` is single-threaded here; the child only makes
    // one syscall and exits without running destructors.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = i32::from(unshare(CloneFlags::CLONE_NEWUSER).is_err());
            // SAFETY: _exit is async-signal-safe and skips atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
        Err(_) => false,
    }
}

/// Runs `cmd` as root inside fresh namespaces and waits for it.
pub fn run(
    mut cmd: Command,
    landlock: Option<Prepared>,
    cgroup_mount: &Path,
    instance_dir: &Path,
) -> anyhow::Result<ExitCode> {
    // Close-on-exec: neither end may reach the agent.
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    // SAFETY: single-threaded (no runtime has been started in `cordon
    // run`), so the child may allocate and run ordinary Rust code.
    match unsafe { fork() }.context("forking the root agent")? {
        ForkResult::Child => {
            drop((ready_r, go_w));
            let err = child(
                &mut cmd,
                landlock,
                cgroup_mount,
                instance_dir,
                ready_w,
                go_r,
            );
            eprintln!("cordon: error: starting the root agent: {err:#}");
            // SAFETY: as above.
            unsafe { libc::_exit(126) }
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            wait_ready(&ready_r)?;
            write_maps(child).inspect_err(|_| {
                if let Err(e) = kill(child, Signal::SIGKILL) {
                    eprintln!("cordon: killing the half-started agent: {e}");
                }
            })?;
            write(&go_w, b"1").context("releasing the root agent")?;
            drop(go_w);
            supervise(child)
        }
    }
}

fn wait_ready(fd: &OwnedFd) -> anyhow::Result<()> {
    let mut b = [0u8; 1];
    match read(fd.as_fd(), &mut b) {
        Ok(1) => Ok(()),
        Ok(_) => bail!("the root agent could not enter its namespaces (see above)"),
        Err(e) => bail!("waiting for the root agent: {e}"),
    }
}

/// uid and gid 0 inside to [`MAPPED_ROOT_UID`] outside, nothing else;
/// setgroups is denied first, as the kernel requires for an unprivileged
/// gid map and so the agent can never drop a group to gain access.
fn write_maps(child: Pid) -> anyhow::Result<()> {
    let proc = format!("/proc/{child}");
    let line = format!("0 {MAPPED_ROOT_UID} 1\n");
    for (file, text) in [
        ("setgroups", "deny\n"),
        ("uid_map", line.as_str()),
        ("gid_map", line.as_str()),
    ] {
        let path = format!("{proc}/{file}");
        std::fs::write(&path, text).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

fn child(
    cmd: &mut Command,
    landlock: Option<Prepared>,
    cgroup_mount: &Path,
    instance_dir: &Path,
    ready: OwnedFd,
    go: OwnedFd,
) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let step = || -> anyhow::Result<()> {
        // Mounts first, while still real root and in a mount namespace the
        // host's user namespace owns: the agent can then neither unmount
        // them nor remount them writable.
        unshare(CloneFlags::CLONE_NEWNS).context("unshare(mount namespace)")?;
        // Nothing mounted here may leak back to the host.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("making mounts private")?;
        // The agent's own instance, bound over the cgroup2 mount point and
        // made read-only: it sees no other cgroup and can change none.
        mount(
            Some(instance_dir),
            cgroup_mount,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "binding {} over {}",
                instance_dir.display(),
                cgroup_mount.display()
            )
        })?;
        mount(
            None::<&str>,
            cgroup_mount,
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .with_context(|| format!("making {} read-only", cgroup_mount.display()))?;
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWCGROUP)
            .context("unshare(user, cgroup namespaces)")?;
        write(&ready, b"1").context("signalling the supervisor")?;
        drop(ready);
        let mut b = [0u8; 1];
        if read(go.as_fd(), &mut b).context("waiting for the id maps")? != 1 {
            bail!("the supervisor did not map the namespace's ids");
        }
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).context("setresgid(0)")?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).context("setresuid(0)")?;
        if let Some(l) = landlock {
            l.enter().context("entering the Landlock domain")?;
        }
        Ok(())
    };
    if let Err(e) = step() {
        return e;
    }
    anyhow::Error::from(cmd.exec()).context("exec")
}

/// Waits for the agent, passing on the signals an operator sends to
/// `cordon run`; exits as it did (128 + signal when killed).
fn supervise(child: Pid) -> anyhow::Result<ExitCode> {
    forward_signals(child);
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitCode::from(code as u8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Ok(ExitCode::from(128u8.wrapping_add(sig as u8)));
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting for the root agent: {e}"),
        }
    }
}

static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn pass_on(sig: libc::c_int) {
    let pid = CHILD.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn forward_signals(child: Pid) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    CHILD.store(child.as_raw(), std::sync::atomic::Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(pass_on),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only calls kill(2).
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            eprintln!("cordon: {sig} will not reach the agent: {e}");
        }
    }
}
