//! The systemd notification protocol (sd_notify(3)): one datagram of
//! `KEY=VALUE` lines to `$NOTIFY_SOCKET`. Written by hand because it is a
//! single `sendto`; a path starting with '@' names an abstract socket.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op, so the
//! daemon can notify unconditionally.
use std::{
    ffi::OsString,
    os::unix::net::{SocketAddr, UnixDatagram},
    time::Duration,
};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {socket:?} is not a usable socket address: {source}")]
    Address {
        socket: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("sending {state:?} to NOTIFY_SOCKET {socket:?}: {source}")]
    Send {
        socket: OsString,
        state: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where notifications go, captured once at start.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        Notifier::from_vars(
            std::env::var_os("NOTIFY_SOCKET"),
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
    }

    fn from_vars(
        socket: Option<OsString>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> Notifier {
        // A watchdog meant for another process (WATCHDOG_PID set and not
        // us, e.g. inherited through exec) must not be fed from here.
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>() == Ok(own_pid));
        let watchdog = watchdog_usec
            .filter(|_| for_us)
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0)
            .map(Duration::from_micros);
        Notifier {
            socket: socket.filter(|s| !s.is_empty()),
            watchdog,
        }
    }

    /// How often to send `WATCHDOG=1`: half the interval systemd enforces,
    /// so one late tick does not get the daemon killed.
    pub fn watchdog_ping_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }

    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// Start of a reload; systemd wants the monotonic clock with it and
    /// `READY=1` once the reload is over.
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()))
    }

    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1\nSTATUS=stopping")
    }

    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    fn send(&self, state: &str) -> Result<(), NotifyError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let addr = address(socket).map_err(|source| NotifyError::Address {
            socket: socket.clone(),
            source,
        })?;
        let send_err = |source| NotifyError::Send {
            socket: socket.clone(),
            state: state.to_string(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(send_err)?;
        sock.send_to_addr(state.as_bytes(), &addr)
            .map_err(send_err)?;
        Ok(())
    }
}

/// A lost notification must not stop enforcement: it is logged, and
/// systemd's own timeouts catch a daemon that really is stuck.
pub fn log_failure(result: Result<(), NotifyError>) {
    if let Err(e) = result {
        tracing::warn!("systemd notification failed: {e}");
    }
}

/// Feeds the systemd watchdog from the async runtime: if the runtime
/// wedges, the pings stop and systemd restarts the daemon.
pub async fn watchdog_loop(n: Notifier, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        log_failure(n.watchdog());
    }
}

/// Newlines would start a new assignment in the datagram.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn address(socket: &OsString) -> std::io::Result<SocketAddr> {
    use std::os::{linux::net::SocketAddrExt, unix::ffi::OsStrExt};
    let bytes = socket.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(std::path::Path::new(socket)),
    }
}

fn monotonic_usec() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn ready_reaches_a_path_socket_with_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_vars(Some(path.into_os_string()), None, None, 1);
        n.ready("serving\non 2 ports").unwrap();
        assert_eq!(received(&sock), "READY=1\nSTATUS=serving on 2 ports");
        n.stopping().unwrap();
        assert_eq!(received(&sock), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn at_sign_names_an_abstract_socket() {
        let name = format!("cordon-notify-test-{}", std::process::id());
        let addr = {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
        };
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::from_vars(Some(format!("@{name}").into()), None, None, 1);
        n.watchdog().unwrap();
        assert_eq!(received(&sock), "WATCHDOG=1");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::from_vars(None, Some("30000000"), None, 1);
        assert_eq!(n.watchdog_ping_interval(), None);
        n.ready("x").unwrap();
    }

    #[test]
    fn watchdog_is_pinged_at_half_the_interval() {
        let n = Notifier::from_vars(Some("/x".into()), Some("30000000"), Some("42"), 42);
        assert_eq!(n.watchdog_ping_interval(), Some(Duration::from_secs(15)));
    }

    #[test]
    fn watchdog_for_another_pid_is_ignored() {
        let n = Notifier::from_vars(Some("/x".into()), Some("30000000"), Some("7"), 42);
        assert_eq!(n.watchdog_ping_interval(), None);
    }

    #[test]
    fn missing_socket_is_an_error_naming_it() {
        let n = Notifier::from_vars(Some("/nonexistent/cordon-notify".into()), None, None, 1);
        let err = n.ready("x").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/cordon-notify"), "{err}");
    }
}
