//! The kernel audit subsystem's status, read and set over its netlink
//! socket, for tests that need to see it or make the kernel drop records.
//! The rate limit is host-wide: a test that sets one holds [`RateLimit`],
//! which puts the old one back when dropped.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

const NETLINK_AUDIT: i32 = 9;
const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_STATUS_RATE_LIMIT: u32 = 0x08;

/// The fields of the kernel's `audit_status` tests look at.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub enabled: u32,
    /// What the kernel does when it loses a record: 2 is panic.
    pub failure: u32,
    /// Records a second the kernel lets through; 0 is no limit.
    pub rate_limit: u32,
    pub lost: u32,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Setup(format!("kernel audit: {what}: {e}"))
}

fn socket() -> Result<OwnedFd> {
    // SAFETY: socket/bind/setsockopt on zeroed structs; the fd is owned at once.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_AUDIT,
        );
        if fd < 0 {
            return Err(io("socket")(std::io::Error::last_os_error()));
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        if libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        ) != 0
        {
            return Err(io("bind")(std::io::Error::last_os_error()));
        }
        let tv = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // Without it a kernel that never answers would hang the test.
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        ) != 0
        {
            return Err(io("receive timeout")(std::io::Error::last_os_error()));
        }
        Ok(owned)
    }
}

/// Sends one message and returns the body of the first answer of type
/// `want` carrying its sequence number.
fn ask(kind: u16, flags: u16, payload: &[u8], want: u16) -> Result<Vec<u8>> {
    let fd = socket()?;
    let seq = std::process::id();
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    // SAFETY: send/recv on an owned socket with owned buffers.
    unsafe {
        if libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) < 0 {
            return Err(io("send")(std::io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 8192];
        loop {
            let n = libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                return Err(io("recv")(std::io::Error::last_os_error()));
            }
            let d = &buf[..n as usize];
            if d.len() >= 16
                && u16::from_ne_bytes([d[4], d[5]]) == want
                && u32::from_ne_bytes([d[8], d[9], d[10], d[11]]) == seq
            {
                return Ok(d[16..].to_vec());
            }
        }
    }
}

/// The kernel's audit status now.
pub fn status() -> Result<Status> {
    let body = ask(AUDIT_GET, 0, &[], AUDIT_GET)?;
    let field = |i: usize| {
        body.get(4 * i..4 * i + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| Error::Setup("kernel audit: a short status".into()))
    };
    Ok(Status {
        enabled: field(1)?,
        failure: field(2)?,
        rate_limit: field(4)?,
        lost: field(6)?,
    })
}

fn set_rate_limit(limit: u32) -> Result<()> {
    let mut payload = [0u8; 24];
    payload[..4].copy_from_slice(&AUDIT_STATUS_RATE_LIMIT.to_ne_bytes());
    payload[16..20].copy_from_slice(&limit.to_ne_bytes());
    let ack = ask(
        AUDIT_SET,
        libc::NLM_F_ACK as u16,
        &payload,
        libc::NLMSG_ERROR as u16,
    )?;
    let code = ack
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-libc::EPROTO);
    if code != 0 {
        return Err(io("setting the rate limit")(
            std::io::Error::from_raw_os_error(-code),
        ));
    }
    Ok(())
}

/// The kernel's audit rate limit, host-wide, until dropped: records over it
/// are dropped as they are logged (and counted as lost), however fast the
/// kernel's audit thread drains its queue.
pub struct RateLimit {
    was: u32,
}

impl RateLimit {
    /// Refuses where losing a record would panic the kernel.
    pub fn set(per_second: u32) -> Result<RateLimit> {
        let now = status()?;
        if now.failure == 2 {
            return Err(Error::Setup(
                "kernel audit failure mode is panic: a test must not make it lose records".into(),
            ));
        }
        set_rate_limit(per_second)?;
        Ok(RateLimit {
            was: now.rate_limit,
        })
    }
}

impl Drop for RateLimit {
    fn drop(&mut self) {
        if let Err(e) = set_rate_limit(self.was) {
            eprintln!(
                "putting the kernel audit rate limit back to {}: {e}",
                self.was
            );
        }
    }
}
