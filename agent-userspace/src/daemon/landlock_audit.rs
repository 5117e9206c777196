//! Landlock's refusals, read from the kernel audit stream and written to
//! Cordon's trail. Landlock (ABI 7) logs each denial of a domain whose
//! creator asked for it (`cordon run` sets `log_new_exec`); the daemon
//! listens on the audit multicast group, which needs no auditd and leaves
//! a running auditd undisturbed.
//!
//! A refusal names its Landlock domain; the domain's first record names
//! the process that created it, which is the agent (`cordon run` execs in
//! place), so the domain maps to the agent's cgroup once and for all.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::sync::mpsc;

use super::Shared;
use crate::contain::landlock_log::{
    self, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN, AUDIT_SYSCALL, Access,
};

const NETLINK_AUDIT: i32 = 9;
const AUDIT_NLGRP_READLOG: u32 = 1;
const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_STATUS_ENABLED: u32 = 1;

pub(super) enum Msg {
    Access(Access),
    Domain(landlock_log::Domain),
    Syscall(landlock_log::Syscall),
}

/// Subscribes to the audit stream (turning kernel auditing on if it is
/// off) and spawns the reader thread and the recording task.
pub fn start(d: &Shared) -> anyhow::Result<()> {
    ensure_enabled()?;
    let sock = multicast_socket()?;
    let (tx, rx) = mpsc::channel::<Msg>(4096);
    std::thread::Builder::new()
        .name("cordon-landlock-audit".into())
        .spawn(move || read_loop(sock, tx))?;
    tokio::spawn(super::landlock_pairing::record_loop(d.clone(), rx));
    Ok(())
}

fn netlink_socket(groups: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket/bind syscalls on a zeroed sockaddr_nl.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_AUDIT,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = groups;
        if libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(owned)
    }
}

fn multicast_socket() -> anyhow::Result<OwnedFd> {
    netlink_socket(AUDIT_NLGRP_READLOG)
        .map_err(|e| anyhow::anyhow!("subscribing to the kernel audit stream: {e}"))
}

fn request(fd: &OwnedFd, kind: u16, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = 16 + payload.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    // SAFETY: send/recv on an owned socket with valid buffers.
    unsafe {
        if libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        let n = libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }
}

/// The kernel audit queue's length this daemon asks for at least (auditd's
/// usual rules set the same). The kernel's default is 64 records, and
/// Landlock logs a refusal from inside the refused call, where it cannot
/// wait: each refusal is three or four records, so a burst of a few dozen
/// refusals on a loaded host (a root agent probing its way around) overran
/// 64 before the kernel's audit thread drained it, and the kernel dropped
/// the rest, refusals included, with only its own `lost` counter to say so.
const WANTED_BACKLOG: u32 = 8192;
const AUDIT_STATUS_BACKLOG_LIMIT: u32 = 0x10;

/// The fields of the kernel's `audit_status` this daemon reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    enabled: u32,
    backlog_limit: u32,
}

impl Status {
    /// From an `AUDIT_GET` reply (netlink header, then `audit_status`:
    /// mask, enabled, failure, pid, rate_limit, backlog_limit, ...).
    fn parse(reply: &[u8]) -> Option<Status> {
        if reply.len() < 16 + 24 || u16::from_ne_bytes([reply[4], reply[5]]) != AUDIT_GET {
            return None;
        }
        let field = |i: usize| {
            let at = 16 + 4 * i;
            u32::from_ne_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]])
        };
        Some(Status {
            enabled: field(1),
            backlog_limit: field(5),
        })
    }

    /// The `AUDIT_SET` payload that turns auditing on and raises the queue
    /// to [`WANTED_BACKLOG`], for whichever of the two is short; `None`
    /// when neither is. A larger limit an administrator set is kept.
    fn wanted(self) -> Option<[u8; 24]> {
        let mut mask = 0;
        let mut payload = [0u8; 24];
        if self.enabled == 0 {
            mask |= AUDIT_STATUS_ENABLED;
            payload[4..8].copy_from_slice(&1u32.to_ne_bytes());
        }
        // 0 is "no limit": nothing to raise.
        if self.backlog_limit != 0 && self.backlog_limit < WANTED_BACKLOG {
            mask |= AUDIT_STATUS_BACKLOG_LIMIT;
            payload[20..24].copy_from_slice(&WANTED_BACKLOG.to_ne_bytes());
        }
        payload[..4].copy_from_slice(&mask.to_ne_bytes());
        (mask != 0).then_some(payload)
    }
}

/// The error an `NLMSG_ERROR` reply carries (its negative errno at +16),
/// `None` for an acknowledgement or any other message.
fn ack_error(reply: &[u8]) -> Option<i32> {
    if reply.len() < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != libc::NLMSG_ERROR as u16 {
        return None;
    }
    let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    (code != 0).then_some(-code)
}

/// Landlock logs nothing while kernel auditing is off, and drops what
/// overflows the kernel's audit queue: both are put right here.
fn ensure_enabled() -> anyhow::Result<()> {
    let fd = netlink_socket(0).map_err(|e| anyhow::anyhow!("opening the audit socket: {e}"))?;
    let mut status = None;
    for _ in 0..3 {
        // The ACK may come first.
        status = Status::parse(&request(&fd, AUDIT_GET, &[])?);
        if status.is_some() {
            break;
        }
    }
    let status = status.ok_or_else(|| anyhow::anyhow!("the kernel sent no audit status"))?;
    if let Some(payload) = status.wanted() {
        let set = request(&fd, AUDIT_SET, &payload).and_then(|reply| match ack_error(&reply) {
            Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        });
        if let Err(e) = set {
            // With auditing off, Landlock logs nothing: that is a failure. With
            // it on (or locked on by the administrator), refusals are logged,
            // only at risk of a short queue: say so and go on.
            if status.enabled == 0 {
                anyhow::bail!("turning kernel auditing on: {e}");
            }
            tracing::warn!(
                backlog_limit = status.backlog_limit,
                "the kernel audit queue could not be raised ({e}): a burst of Landlock refusals may overrun it, and the kernel then drops records"
            );
            return Ok(());
        }
        tracing::info!(
            was_enabled = status.enabled != 0,
            backlog_limit_was = status.backlog_limit,
            backlog_limit = WANTED_BACKLOG.max(status.backlog_limit),
            "kernel auditing on, with a queue long enough for a burst of Landlock refusals"
        );
    }
    Ok(())
}

fn read_loop(sock: OwnedFd, tx: mpsc::Sender<Msg>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv into an owned buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                tracing::warn!(
                    "kernel audit stream overran; some Landlock refusals are not itemised"
                );
                continue;
            }
            tracing::error!("kernel audit stream: {e}; Landlock refusals are no longer recorded");
            return;
        }
        if let Some(m) = parse_message(&buf[..n as usize])
            && tx.blocking_send(m).is_err()
        {
            return;
        }
    }
}

/// One multicast audit datagram: a netlink header (length, type, ...) and
/// one record's text. Only the three record types pairing needs are kept.
fn parse_message(msg: &[u8]) -> Option<Msg> {
    let header = msg.get(..16)?;
    let len = u32::from_ne_bytes(header[..4].try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes([header[4], header[5]]);
    // The header's length is not always the datagram's: take the shorter.
    let body = msg.get(16..len.max(16).min(msg.len()))?;
    let text = String::from_utf8_lossy(body);
    let text = text.trim_end_matches('\0');
    match kind {
        AUDIT_LANDLOCK_ACCESS => landlock_log::parse_access(text).map(Msg::Access),
        AUDIT_LANDLOCK_DOMAIN => landlock_log::parse_domain(text).map(Msg::Domain),
        AUDIT_SYSCALL => landlock_log::parse_syscall(text).map(Msg::Syscall),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(kind: u16, text: &str) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + text.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(text.as_bytes());
        m
    }

    #[test]
    fn a_landlock_refusal_datagram_is_parsed_and_other_types_are_not() {
        let m = datagram(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1.2:7): domain=ab blockers=fs.read_file path=\"/x\" dev=\"vda\" ino=1",
        );
        assert!(matches!(parse_message(&m), Some(Msg::Access(a)) if a.serial == 7));
        assert!(parse_message(&datagram(1334, "audit(1.2:8): prog-id=1 op=LOAD")).is_none());
        assert!(parse_message(&m[..10]).is_none());
    }

    fn status_reply(enabled: u32, backlog_limit: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(16u32 + 44).to_ne_bytes());
        m.extend_from_slice(&AUDIT_GET.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        for field in [0, enabled, 1, 0, 0, backlog_limit, 97, 0, 127, 15000, 0] {
            m.extend_from_slice(&field.to_ne_bytes());
        }
        m
    }

    fn word(p: &[u8; 24], i: usize) -> u32 {
        u32::from_ne_bytes(p[4 * i..4 * i + 4].try_into().unwrap())
    }

    #[test]
    fn the_kernels_default_queue_of_64_is_raised_and_a_larger_one_kept() {
        let s = Status::parse(&status_reply(1, 64)).unwrap();
        assert_eq!(
            s,
            Status {
                enabled: 1,
                backlog_limit: 64
            }
        );
        let p = s.wanted().unwrap();
        assert_eq!(word(&p, 0), AUDIT_STATUS_BACKLOG_LIMIT);
        assert_eq!(word(&p, 5), WANTED_BACKLOG);
        // Off, and short: both in one request.
        let p = Status::parse(&status_reply(0, 64))
            .unwrap()
            .wanted()
            .unwrap();
        assert_eq!(
            word(&p, 0),
            AUDIT_STATUS_ENABLED | AUDIT_STATUS_BACKLOG_LIMIT
        );
        assert_eq!(word(&p, 1), 1);
        // Already on with a longer queue, or no limit at all: nothing to do.
        assert_eq!(
            Status::parse(&status_reply(1, 65536)).unwrap().wanted(),
            None
        );
        assert_eq!(Status::parse(&status_reply(1, 0)).unwrap().wanted(), None);
        // Off with a long queue: only auditing is turned on.
        let p = Status::parse(&status_reply(0, 65536))
            .unwrap()
            .wanted()
            .unwrap();
        assert_eq!(word(&p, 0), AUDIT_STATUS_ENABLED);
        // An ACK, or a short reply, is not a status.
        assert_eq!(Status::parse(&status_reply(1, 64)[..30]), None);
    }
}
