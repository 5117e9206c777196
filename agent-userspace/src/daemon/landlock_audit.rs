//! Landlock's refusals, read from the kernel audit stream and written to
//! Cordon's trail. Landlock (ABI 7) logs each denial of a domain whose
//! creator asked for it (`cordon run` sets `log_new_exec`); the daemon
//! listens on the audit multicast group, which needs no auditd and leaves
//! a running auditd undisturbed.
//!
//! A refusal names its Landlock domain; the domain's first record names
//! the process that created it, which is the agent (`cordon run` execs in
//! place), so the domain maps to the agent's cgroup once and for all.
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc;

use super::{Shared, audit_netlink, audit_status};
use crate::contain::landlock_log::{
    self, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN, AUDIT_SYSCALL, Access,
};

const AUDIT_NLGRP_READLOG: u32 = 1;

pub(super) enum Msg {
    Access(Access),
    Domain(landlock_log::Domain),
    Syscall(landlock_log::Syscall),
}

/// Subscribes to the audit stream (turning kernel auditing on if it is
/// off) and spawns the reader thread and the recording task.
pub fn start(d: &Shared) -> anyhow::Result<()> {
    let status = audit_status::ensure_enabled()?;
    let sock = multicast_socket()?;
    let (tx, rx) = mpsc::channel::<Msg>(4096);
    let overruns = Arc::new(AtomicU64::new(0));
    let counted = overruns.clone();
    std::thread::Builder::new()
        .name("cordon-landlock-audit".into())
        .spawn(move || read_loop(sock, tx, &counted))?;
    tokio::spawn(super::landlock_pairing::record_loop(d.clone(), rx));
    tokio::spawn(super::landlock_lost::run(d.clone(), status.lost, overruns));
    Ok(())
}

fn multicast_socket() -> anyhow::Result<OwnedFd> {
    audit_netlink::socket(AUDIT_NLGRP_READLOG, None)
        .map_err(|e| anyhow::anyhow!("subscribing to the kernel audit stream: {e}"))
}

fn read_loop(sock: OwnedFd, tx: mpsc::Sender<Msg>, overruns: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv into an owned buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                // `landlock_lost` writes the count to the trail.
                overruns.fetch_add(1, Ordering::Relaxed);
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
    let header = audit_netlink::Header::parse(msg)?;
    let text = String::from_utf8_lossy(header.body(msg));
    let text = text.trim_end_matches('\0');
    match header.kind {
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
        audit_netlink::message(kind, 0, 0, text.as_bytes())
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
