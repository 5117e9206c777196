//! Upgrading the daemon in place: on SIGUSR2 the running daemon drains,
//! then execs the binary now installed at the path it was started from
//! (dpkg renames the new file over it), keeping its process id and its
//! agent-facing sockets. The sockets never close, so an agent's connect
//! during the upgrade waits in the listen backlog (a datagram in the
//! socket buffer) for the new binary instead of being refused; the pinned
//! programs enforce throughout and the new binary adopts them.
//!
//! The sockets are named in `CORDON_HANDOVER_FDS` together with the process
//! id, so a process that merely inherited the environment ignores them.
use std::{
    ffi::{CString, OsString},
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::listeners::Listeners;

pub const ENV: &str = "CORDON_HANDOVER_FDS";
/// How long the new binary gets to answer `--version` before the upgrade
/// is called off (the running daemon then keeps serving).
const PREFLIGHT: Duration = Duration::from_secs(10);

/// The command line the daemon was started with, captured at start: after
/// an upgrade the path names the new file, while `/proc/self/exe` still
/// names the old one (deleted).
#[derive(Debug, Clone)]
pub struct Exe {
    pub path: PathBuf,
    args: Vec<OsString>,
}

impl Exe {
    pub fn capture() -> anyhow::Result<Exe> {
        let path = std::env::current_exe().context("reading the daemon's own path")?;
        Ok(Exe {
            path,
            args: std::env::args_os().collect(),
        })
    }
}

/// The socket of each kind, by descriptor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoverFds {
    pub tcp4: RawFd,
    pub tcp6: RawFd,
    pub udp4: RawFd,
    pub udp6: RawFd,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("{ENV}: expected `pid=N;tcp4=FD,tcp6=FD,udp4=FD,udp6=FD`, found {0:?}")]
    Shape(String),
    #[error("{ENV}: `{0}` is not a descriptor number")]
    Number(String),
    #[error("{ENV}: {0} is missing")]
    Missing(&'static str),
}

pub fn format(pid: u32, fds: &HandoverFds) -> String {
    format!(
        "pid={pid};tcp4={},tcp6={},udp4={},udp6={}",
        fds.tcp4, fds.tcp6, fds.udp4, fds.udp6
    )
}

/// The descriptors named in `value` when they are meant for `own_pid`;
/// `None` when they were meant for another process.
pub fn parse(value: &str, own_pid: u32) -> Result<Option<HandoverFds>, ParseError> {
    let shape = || ParseError::Shape(value.into());
    let (pid, list) = value.split_once(';').ok_or_else(shape)?;
    let pid = pid.strip_prefix("pid=").ok_or_else(shape)?;
    let pid: u32 = pid.parse().map_err(|_| ParseError::Number(pid.into()))?;
    if pid != own_pid {
        return Ok(None);
    }
    let mut found: [Option<RawFd>; 4] = [None; 4];
    const NAMES: [&str; 4] = ["tcp4", "tcp6", "udp4", "udp6"];
    for item in list.split(',') {
        let (name, fd) = item.split_once('=').ok_or_else(shape)?;
        let slot = NAMES.iter().position(|n| *n == name).ok_or_else(shape)?;
        let fd: RawFd = fd.parse().map_err(|_| ParseError::Number(fd.into()))?;
        if fd < 3 {
            return Err(ParseError::Number(fd.to_string()));
        }
        found[slot] = Some(fd);
    }
    let get = |i: usize| found[i].ok_or(ParseError::Missing(NAMES[i]));
    Ok(Some(HandoverFds {
        tcp4: get(0)?,
        tcp6: get(1)?,
        udp4: get(2)?,
        udp6: get(3)?,
    }))
}

/// The listeners a previous binary of this process handed over, if any.
/// Each descriptor must be a socket of its kind bound on loopback, the
/// TCP ones listening, each pair on one port; anything else stops the
/// start rather than serving agents on a socket Cordon did not make.
pub fn inherited() -> anyhow::Result<Option<Listeners>> {
    let Some(value) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    let value = value.to_string_lossy().into_owned();
    let Some(fds) = parse(&value, std::process::id())? else {
        return Ok(None);
    };
    let tcp4 = adopt(fds.tcp4, socket2::Type::STREAM, false)?;
    let tcp6 = adopt(fds.tcp6, socket2::Type::STREAM, true)?;
    let udp4 = adopt(fds.udp4, socket2::Type::DGRAM, false)?;
    let udp6 = adopt(fds.udp6, socket2::Type::DGRAM, true)?;
    let port = |s: &socket2::Socket| s.local_addr().ok().and_then(|a| a.as_socket());
    if port(&tcp4).map(|a| a.port()) != port(&tcp6).map(|a| a.port())
        || port(&udp4).map(|a| a.port()) != port(&udp6).map(|a| a.port())
    {
        bail!("{ENV}: the IPv4 and IPv6 sockets of a pair are on different ports");
    }
    Ok(Some(Listeners::from_sockets(
        tcp4.into(),
        tcp6.into(),
        udp4.into(),
        udp6.into(),
    )?))
}

fn adopt(fd: RawFd, kind: socket2::Type, v6: bool) -> anyhow::Result<socket2::Socket> {
    // The descriptor must exist before it is owned (and later closed).
    // SAFETY: F_GETFD only reads the flags of a descriptor number.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!(
            "{ENV}: descriptor {fd}: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: the descriptor is open, was named for this process by the
    // binary it replaced, and nothing else in this process owns it.
    let s = unsafe { socket2::Socket::from_raw_fd(fd) };
    // Back to close-on-exec: nothing the daemon starts may inherit it.
    fcntl(&s, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .with_context(|| format!("{ENV}: descriptor {fd}"))?;
    let addr = s
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .with_context(|| format!("{ENV}: descriptor {fd} is not an inet socket"))?;
    if s.r#type()? != kind || !addr.ip().is_loopback() || addr.is_ipv6() != v6 {
        bail!("{ENV}: descriptor {fd} ({addr}) is not the expected loopback socket");
    }
    if kind == socket2::Type::STREAM && !s.is_listener()? {
        bail!("{ENV}: descriptor {fd} ({addr}) is not listening");
    }
    Ok(s)
}

/// Runs `<new binary> --version`: a file that cannot run here (wrong
/// architecture, truncated) calls the upgrade off before anything stops.
pub fn preflight(exe: &Exe) -> anyhow::Result<String> {
    let mut child = std::process::Command::new(&exe.path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("running {} --version", exe.path.display()))?;
    let deadline = std::time::Instant::now() + PREFLIGHT;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                std::io::Read::read_to_string(&mut o, &mut out)?;
            }
            if !status.success() {
                bail!("{} --version exited {status}", exe.path.display());
            }
            return Ok(out.trim().to_string());
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("{} --version did not answer", exe.path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Execs the binary at `exe.path` with the sockets, or, when that fails,
/// the binary this process runs now (`/proc/self/exe`, which outlives its
/// file being replaced), so the agents keep a daemon. Returns only when
/// both fail.
pub fn exec(exe: &Exe, sockets: [&dyn AsFd; 4]) -> anyhow::Error {
    let raw = |i: usize| sockets[i].as_fd().as_raw_fd();
    let fds = HandoverFds {
        tcp4: raw(0),
        tcp6: raw(1),
        udp4: raw(2),
        udp6: raw(3),
    };
    for s in sockets {
        if let Err(e) = fcntl(s.as_fd(), FcntlArg::F_SETFD(FdFlag::empty())) {
            let fd = s.as_fd().as_raw_fd();
            return anyhow::anyhow!("keeping descriptor {fd} across exec: {e}");
        }
    }
    let value = format(std::process::id(), &fds);
    let (args, env) = match (cstrings(exe.args.iter()), environment(&value)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let err = match cstring(exe.path.as_os_str()) {
        Ok(path) => nix::unistd::execve(&path, &args, &env).unwrap_err(),
        Err(e) => return e,
    };
    tracing::error!(
        "cannot exec {}: {err}; restarting the running version instead",
        exe.path.display()
    );
    let own = c"/proc/self/exe";
    let again = nix::unistd::execve(own, &args, &env).unwrap_err();
    anyhow::anyhow!(
        "exec {}: {err}; exec of the running version: {again}",
        exe.path.display()
    )
}

fn environment(value: &str) -> anyhow::Result<Vec<CString>> {
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == ENV {
            continue;
        }
        let mut kv = k.into_encoded_bytes();
        kv.push(b'=');
        kv.extend(v.into_encoded_bytes());
        env.push(CString::new(kv).context("an environment variable holds a NUL byte")?);
    }
    env.push(CString::new(format!("{ENV}={value}"))?);
    Ok(env)
}

fn cstrings<'a>(items: impl Iterator<Item = &'a OsString>) -> anyhow::Result<Vec<CString>> {
    items.map(|s| cstring(s)).collect()
}

fn cstring(s: &std::ffi::OsStr) -> anyhow::Result<CString> {
    CString::new(s.as_bytes()).with_context(|| format!("{s:?} holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDS: HandoverFds = HandoverFds {
        tcp4: 7,
        tcp6: 8,
        udp4: 9,
        udp6: 10,
    };

    #[test]
    fn handover_value_round_trips_for_the_same_process() {
        assert_eq!(parse(&format(42, &FDS), 42), Ok(Some(FDS)));
    }

    #[test]
    fn handover_meant_for_another_process_is_ignored() {
        assert_eq!(parse(&format(42, &FDS), 43), Ok(None));
    }

    #[test]
    fn handover_missing_a_socket_or_naming_stdio_is_refused() {
        assert_eq!(
            parse("pid=1;tcp4=3,tcp6=4,udp4=5", 1),
            Err(ParseError::Missing("udp6"))
        );
        assert_eq!(
            parse("pid=1;tcp4=0,tcp6=4,udp4=5,udp6=6", 1),
            Err(ParseError::Number("0".into()))
        );
        assert!(matches!(
            parse("tcp4=3,tcp6=4,udp4=5,udp6=6", 1),
            Err(ParseError::Shape(_))
        ));
        assert!(matches!(
            parse("pid=1;tcp9=3,tcp6=4,udp4=5,udp6=6", 1),
            Err(ParseError::Shape(_))
        ));
    }
}
