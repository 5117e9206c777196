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

/// Landlock logs nothing while kernel auditing is off.
fn ensure_enabled() -> anyhow::Result<()> {
    let fd = netlink_socket(0).map_err(|e| anyhow::anyhow!("opening the audit socket: {e}"))?;
    let mut enabled = None;
    for _ in 0..3 {
        let reply = request(&fd, AUDIT_GET, &[])?;
        // The ACK may come first; the status reply carries `enabled` at +20.
        if reply.len() >= 24 && u16::from_ne_bytes([reply[4], reply[5]]) == AUDIT_GET {
            enabled = Some(u32::from_ne_bytes([
                reply[20], reply[21], reply[22], reply[23],
            ]));
            break;
        }
    }
    if enabled.unwrap_or(0) == 0 {
        let mut status = [0u8; 8];
        status[..4].copy_from_slice(&AUDIT_STATUS_ENABLED.to_ne_bytes());
        status[4..].copy_from_slice(&1u32.to_ne_bytes());
        request(&fd, AUDIT_SET, &status)
            .map_err(|e| anyhow::anyhow!("turning kernel auditing on: {e}"))?;
        tracing::info!("kernel auditing was off; turned it on so Landlock refusals are logged");
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
}
