//! The kernel audit netlink socket: opening it, and writing and reading the netlink
//! headers of what it carries. Shared by the audit switch
//! (`audit_status`) and the Landlock refusal stream (`landlock_audit`).
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

const NETLINK_AUDIT: i32 = 9;
const HEADER_LEN: usize = 16;

/// A bound audit socket; `groups` 0 for requests, a multicast group to
/// listen. `timeout`, when given, bounds every receive on it.
pub(super) fn socket(groups: u32, timeout: Option<Duration>) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket/bind/setsockopt syscalls on zeroed structs.
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
        if let Some(t) = timeout {
            let tv = libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            };
            if libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(owned)
    }
}

/// The fields of a netlink header this daemon reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// The length the header claims, header included.
    pub len: usize,
    pub kind: u16,
    pub seq: u32,
}

impl Header {
    pub(super) fn parse(msg: &[u8]) -> Option<Header> {
        let h = msg.get(..HEADER_LEN)?;
        Some(Header {
            len: u32::from_ne_bytes(h[0..4].try_into().ok()?) as usize,
            kind: u16::from_ne_bytes([h[4], h[5]]),
            seq: u32::from_ne_bytes(h[8..12].try_into().ok()?),
        })
    }

    /// The message's body. The audit stream's header length is not always
    /// the datagram's, so the shorter of the two bounds it.
    pub(super) fn body<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        msg.get(HEADER_LEN..self.len.max(HEADER_LEN).min(msg.len()))
            .unwrap_or(&[])
    }
}

/// The netlink messages in one datagram, each with its header. A header
/// whose length runs past the datagram (or is shorter than a header) ends
/// the walk with what is left.
pub(super) fn messages(datagram: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while let Some(h) = Header::parse(rest) {
        if h.len < HEADER_LEN || h.len >= rest.len() {
            out.push((h, rest));
            break;
        }
        out.push((h, &rest[..h.len]));
        // Netlink aligns each message to 4 bytes.
        let next = (h.len + 3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    out
}

/// One netlink message: the header (length, type, flags, sequence number,
/// port 0: the kernel's) and `body`.
pub(super) fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + body.len());
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_of_two_messages_is_split_at_the_aligned_boundary() {
        let mut d = message(1000, 0, 7, b"abc");
        d.extend_from_slice(&[0]); // padding to 20
        d.extend(message(2, 0, 7, &[0; 4]));
        let m = messages(&d);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].0.kind, m[0].0.seq), (1000, 7));
        assert_eq!(m[0].0.body(m[0].1), b"abc");
        assert_eq!(m[1].0.kind, 2);
        assert_eq!(m[1].0.body(m[1].1), &[0; 4]);
        // A header claiming more than the datagram holds keeps what is there.
        let mut long = message(1000, 0, 1, b"xy");
        long[0] = 200;
        let m = messages(&long);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0.body(m[0].1), b"xy");
        assert!(messages(&long[..10]).is_empty());
    }
}
