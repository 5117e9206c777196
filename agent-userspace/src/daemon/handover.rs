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

use super::listeners::{Listeners, ProxyPair};

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

/// The sockets by descriptor number: the proxy's pairs (one per core of
/// the image that hands them over), then the resolver's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverFds {
    /// `(tcp4, tcp6)` per pair; never empty.
    pub tcp: Vec<(RawFd, RawFd)>,
    pub udp4: RawFd,
    pub udp6: RawFd,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error(
        "{ENV}: expected `pid=N;tcp4=FD,tcp6=FD[,tcp4=FD,tcp6=FD...],udp4=FD,udp6=FD`, found {0:?}"
    )]
    Shape(String),
    #[error("{ENV}: `{0}` is not a descriptor number")]
    Number(String),
    #[error("{ENV}: {0} is missing")]
    Missing(&'static str),
    #[error("{ENV}: {tcp4} tcp4 and {tcp6} tcp6 descriptors do not make pairs")]
    Unpaired { tcp4: usize, tcp6: usize },
    #[error("{ENV}: descriptor {0} is named twice")]
    Repeated(RawFd),
}

/// The value for `CORDON_HANDOVER_FDS`. Each proxy pair is written as
/// `tcp4=..,tcp6=..` in order, so an image from before thread-per-core
/// (one pair) reads the same shape.
pub fn format(pid: u32, fds: &HandoverFds) -> String {
    let tcp: Vec<String> = fds
        .tcp
        .iter()
        .map(|(v4, v6)| format!("tcp4={v4},tcp6={v6}"))
        .collect();
    format!(
        "pid={pid};{},udp4={},udp6={}",
        tcp.join(","),
        fds.udp4,
        fds.udp6
    )
}

/// The descriptors named in `value` when they are meant for `own_pid`;
/// `None` when they were meant for another process. The n-th `tcp4` pairs
/// with the n-th `tcp6`.
pub fn parse(value: &str, own_pid: u32) -> Result<Option<HandoverFds>, ParseError> {
    let shape = || ParseError::Shape(value.into());
    let (pid, list) = value.split_once(';').ok_or_else(shape)?;
    let pid = pid.strip_prefix("pid=").ok_or_else(shape)?;
    let pid: u32 = pid.parse().map_err(|_| ParseError::Number(pid.into()))?;
    if pid != own_pid {
        return Ok(None);
    }
    let (mut tcp4, mut tcp6) = (Vec::new(), Vec::new());
    let (mut udp4, mut udp6) = (None, None);
    let mut seen = std::collections::HashSet::new();
    for item in list.split(',') {
        let (name, fd) = item.split_once('=').ok_or_else(shape)?;
        let fd: RawFd = fd.parse().map_err(|_| ParseError::Number(fd.into()))?;
        if fd < 3 {
            return Err(ParseError::Number(fd.to_string()));
        }
        if !seen.insert(fd) {
            return Err(ParseError::Repeated(fd));
        }
        match name {
            "tcp4" => tcp4.push(fd),
            "tcp6" => tcp6.push(fd),
            "udp4" if udp4.is_none() => udp4 = Some(fd),
            "udp6" if udp6.is_none() => udp6 = Some(fd),
            _ => return Err(shape()),
        }
    }
    if tcp4.is_empty() {
        return Err(ParseError::Missing("tcp4"));
    }
    if tcp4.len() != tcp6.len() {
        return Err(ParseError::Unpaired {
            tcp4: tcp4.len(),
            tcp6: tcp6.len(),
        });
    }
    Ok(Some(HandoverFds {
        tcp: tcp4.into_iter().zip(tcp6).collect(),
        udp4: udp4.ok_or(ParseError::Missing("udp4"))?,
        udp6: udp6.ok_or(ParseError::Missing("udp6"))?,
    }))
}

/// The listeners a previous binary of this process handed over, if any.
/// Each descriptor must be a socket of its kind bound on loopback, the
/// TCP ones listening, all proxy sockets on one port and both resolver
/// sockets on another; anything else stops the start rather than serving
/// agents on a socket Cordon did not make.
pub fn inherited() -> anyhow::Result<Option<Listeners>> {
    let Some(value) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    let value = value.to_string_lossy().into_owned();
    let Some(fds) = parse(&value, std::process::id())? else {
        return Ok(None);
    };
    let port = |s: &socket2::Socket| {
        s.local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
    };
    let mut proxy = Vec::with_capacity(fds.tcp.len());
    let mut proxy_port = None;
    for (v4, v6) in &fds.tcp {
        let tcp4 = adopt(*v4, socket2::Type::STREAM, false)?;
        let tcp6 = adopt(*v6, socket2::Type::STREAM, true)?;
        let here = port(&tcp4);
        if here != port(&tcp6) || proxy_port.is_some_and(|p| Some(p) != here) {
            bail!("{ENV}: the proxy sockets are not all on one port");
        }
        proxy_port = here;
        proxy.push(ProxyPair {
            v4: tcp4.into(),
            v6: tcp6.into(),
        });
    }
    let udp4 = adopt(fds.udp4, socket2::Type::DGRAM, false)?;
    let udp6 = adopt(fds.udp6, socket2::Type::DGRAM, true)?;
    if port(&udp4) != port(&udp6) {
        bail!("{ENV}: the IPv4 and IPv6 resolver sockets are on different ports");
    }
    Ok(Some(Listeners::from_sockets(
        proxy,
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
pub fn exec(exe: &Exe, sockets: &Listeners) -> anyhow::Error {
    let fds = HandoverFds {
        tcp: sockets
            .proxy
            .iter()
            .map(|p| (p.v4.as_raw_fd(), p.v6.as_raw_fd()))
            .collect(),
        udp4: sockets.udp4.as_raw_fd(),
        udp6: sockets.udp6.as_raw_fd(),
    };
    let mut all: Vec<std::os::fd::BorrowedFd<'_>> = Vec::new();
    for p in &sockets.proxy {
        all.push(p.v4.as_fd());
        all.push(p.v6.as_fd());
    }
    all.push(sockets.udp4.as_fd());
    all.push(sockets.udp6.as_fd());
    for s in all {
        if let Err(e) = fcntl(s, FcntlArg::F_SETFD(FdFlag::empty())) {
            let fd = s.as_raw_fd();
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

    fn fds(pairs: usize) -> HandoverFds {
        HandoverFds {
            tcp: (0..pairs as RawFd)
                .map(|i| (10 + 2 * i, 11 + 2 * i))
                .collect(),
            udp4: 7,
            udp6: 8,
        }
    }

    #[test]
    fn handover_value_round_trips_for_the_same_process() {
        for pairs in [1, 2, 5] {
            assert_eq!(parse(&format(42, &fds(pairs)), 42), Ok(Some(fds(pairs))));
        }
    }

    #[test]
    fn an_image_from_before_thread_per_core_hands_over_one_pair() {
        // The shape every earlier image wrote.
        assert_eq!(
            parse("pid=9;tcp4=7,tcp6=8,udp4=9,udp6=10", 9),
            Ok(Some(HandoverFds {
                tcp: vec![(7, 8)],
                udp4: 9,
                udp6: 10,
            }))
        );
    }

    #[test]
    fn pairs_are_made_in_order_wherever_the_resolver_sockets_are() {
        let v = "pid=1;tcp4=3,udp4=9,tcp6=4,tcp4=5,udp6=10,tcp6=6";
        assert_eq!(parse(v, 1).unwrap().unwrap().tcp, vec![(3, 4), (5, 6)]);
    }

    #[test]
    fn handover_meant_for_another_process_is_ignored() {
        assert_eq!(parse(&format(42, &fds(2)), 43), Ok(None));
    }

    #[test]
    fn handover_missing_a_socket_or_naming_stdio_is_refused() {
        assert_eq!(
            parse("pid=1;tcp4=3,tcp6=4,udp4=5", 1),
            Err(ParseError::Missing("udp6"))
        );
        assert_eq!(
            parse("pid=1;udp4=5,udp6=6", 1),
            Err(ParseError::Missing("tcp4"))
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

    #[test]
    fn unpaired_repeated_or_doubled_descriptors_are_refused() {
        assert_eq!(
            parse("pid=1;tcp4=3,tcp6=4,tcp4=5,udp4=7,udp6=8", 1),
            Err(ParseError::Unpaired { tcp4: 2, tcp6: 1 })
        );
        assert_eq!(
            parse("pid=1;tcp4=3,tcp6=3,udp4=7,udp6=8", 1),
            Err(ParseError::Repeated(3))
        );
        assert!(matches!(
            parse("pid=1;tcp4=3,tcp6=4,udp4=7,udp4=9,udp6=8", 1),
            Err(ParseError::Shape(_))
        ));
    }
}
