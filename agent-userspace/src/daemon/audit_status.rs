//! Kernel auditing on, with a queue long enough for Landlock's refusals.
//! Landlock logs nothing while kernel auditing is off, and the kernel drops
//! what overflows its audit queue: the daemon puts both right at start.
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::audit_netlink;

const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_STATUS_ENABLED: u32 = 1;
const AUDIT_STATUS_BACKLOG_LIMIT: u32 = 0x10;

/// The kernel audit queue's length this daemon asks for at least (auditd's
/// usual rules set the same). The kernel's default is 64 records, and
/// Landlock logs a refusal from inside the refused call, where it cannot
/// wait: each refusal is three or four records, so a burst of a few dozen
/// refusals on a loaded host (a root agent probing its way around) overran
/// 64 before the kernel's audit thread drained it, and the kernel dropped
/// the rest, refusals included, with only its own `lost` counter to say so.
const WANTED_BACKLOG: u32 = 8192;

/// How long the kernel gets to answer one request. Its status reply comes
/// from a kernel thread of its own, which a loaded host may run late.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields of the kernel's `audit_status` this daemon reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Status {
    pub enabled: u32,
    pub backlog_limit: u32,
    /// Records the kernel dropped since boot, host-wide (a full queue, or
    /// its rate limit). A 32-bit counter: it wraps.
    pub lost: u32,
}

impl Status {
    /// From an `AUDIT_GET` reply's body, the kernel's `audit_status`:
    /// mask, enabled, failure, pid, rate_limit, backlog_limit, lost, ...
    fn parse(body: &[u8]) -> Option<Status> {
        let field = |i: usize| {
            Some(u32::from_ne_bytes(
                body.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        Some(Status {
            enabled: field(1)?,
            backlog_limit: field(5)?,
            lost: field(6)?,
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

/// One request's answer as it arrives. The kernel acknowledges a request
/// inline, but sends `AUDIT_GET`'s status from a kernel thread, so the
/// acknowledgement usually comes first and the status some time later;
/// either may also follow a late answer to an earlier request, which only
/// its sequence number tells apart.
struct Exchange {
    seq: u32,
    /// The reply type the request waits for besides the acknowledgement.
    reply_kind: Option<u16>,
    reply: Option<Vec<u8>>,
    acked: bool,
}

impl Exchange {
    fn new(seq: u32, reply_kind: Option<u16>) -> Exchange {
        Exchange {
            seq,
            reply_kind,
            reply: None,
            acked: false,
        }
    }

    /// Takes in one datagram. `Ok(true)` once the request is answered in
    /// full; `Err(errno)` if the kernel refused it.
    fn feed(&mut self, datagram: &[u8]) -> Result<bool, i32> {
        for (h, msg) in audit_netlink::messages(datagram) {
            if h.seq != self.seq {
                continue;
            }
            let body = h.body(msg);
            if h.kind == libc::NLMSG_ERROR as u16 {
                let code = body
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes)
                    .ok_or(libc::EPROTO)?;
                if code != 0 {
                    return Err(-code);
                }
                self.acked = true;
            } else if Some(h.kind) == self.reply_kind {
                self.reply = Some(body.to_vec());
            }
        }
        Ok(self.acked && (self.reply_kind.is_none() || self.reply.is_some()))
    }
}

/// A request socket to the kernel's audit subsystem.
pub(super) struct Auditor {
    fd: OwnedFd,
    seq: u32,
}

impl Auditor {
    pub(super) fn open() -> std::io::Result<Auditor> {
        Ok(Auditor {
            fd: audit_netlink::socket(0, Some(ANSWER_TIMEOUT))?,
            seq: 0,
        })
    }

    pub(super) fn status(&mut self) -> std::io::Result<Status> {
        let body = self.request(AUDIT_GET, Some(AUDIT_GET), &[])?;
        body.as_deref().and_then(Status::parse).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the kernel's audit status reply is too short",
            )
        })
    }

    fn set(&mut self, payload: &[u8; 24]) -> std::io::Result<()> {
        self.request(AUDIT_SET, None, payload).map(drop)
    }

    /// Sends one request and waits for its full answer; the reply's body,
    /// if the request has one.
    fn request(
        &mut self,
        kind: u16,
        reply_kind: Option<u16>,
        payload: &[u8],
    ) -> std::io::Result<Option<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let flags = libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        let msg = audit_netlink::message(kind, flags, self.seq, payload);
        let fd = self.fd.as_raw_fd();
        // SAFETY: send on an owned socket with a valid buffer.
        if unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut exchange = Exchange::new(self.seq, reply_kind);
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: recv into an owned buffer; the socket's receive
            // timeout bounds the wait.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the kernel did not answer within {ANSWER_TIMEOUT:?}"),
                    ));
                }
                return Err(e);
            }
            match exchange.feed(&buf[..n as usize]) {
                Ok(true) => return Ok(exchange.reply),
                Ok(false) => {}
                Err(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
            }
        }
    }
}

/// Turns kernel auditing on and raises its queue, where either is short.
/// Returns the status as it was, whose `lost` count is where this daemon's
/// own count of dropped records starts.
pub(super) fn ensure_enabled() -> anyhow::Result<Status> {
    let mut auditor =
        Auditor::open().map_err(|e| anyhow::anyhow!("opening the audit socket: {e}"))?;
    let status = auditor
        .status()
        .map_err(|e| anyhow::anyhow!("asking the kernel for its audit status: {e}"))?;
    let Some(payload) = status.wanted() else {
        return Ok(status);
    };
    if let Err(e) = auditor.set(&payload) {
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
        return Ok(status);
    }
    tracing::info!(
        was_enabled = status.enabled != 0,
        backlog_limit_was = status.backlog_limit,
        backlog_limit = WANTED_BACKLOG.max(status.backlog_limit),
        "kernel auditing on, with a queue long enough for a burst of Landlock refusals"
    );
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::audit_netlink::message;
    use super::*;

    fn status_body(enabled: u32, backlog_limit: u32) -> Vec<u8> {
        [0, enabled, 1, 0, 0, backlog_limit, 97, 0, 127, 15000, 0]
            .iter()
            .flat_map(|f: &u32| f.to_ne_bytes())
            .collect()
    }

    fn ack(seq: u32, errno: i32) -> Vec<u8> {
        // An error message's body: the negative errno, then the request's header.
        let mut body = (-errno).to_ne_bytes().to_vec();
        body.extend(message(AUDIT_GET, 0, seq, &[]));
        message(libc::NLMSG_ERROR as u16, 0, seq, &body)
    }

    fn word(p: &[u8; 24], i: usize) -> u32 {
        u32::from_ne_bytes(p[4 * i..4 * i + 4].try_into().unwrap())
    }

    #[test]
    fn the_status_is_taken_whether_it_comes_before_or_after_the_ack() {
        let status = message(AUDIT_GET, 0, 1, &status_body(1, 64));
        // The ACK first, as the kernel usually sends it.
        let mut x = Exchange::new(1, Some(AUDIT_GET));
        assert_eq!(x.feed(&ack(1, 0)), Ok(false));
        assert_eq!(x.feed(&status), Ok(true));
        assert_eq!(x.reply, Some(status_body(1, 64)));
        // The status first.
        let mut x = Exchange::new(1, Some(AUDIT_GET));
        assert_eq!(x.feed(&status), Ok(false));
        assert_eq!(x.feed(&ack(1, 0)), Ok(true));
        // An earlier request's late status and ACK are not this one's.
        let mut x = Exchange::new(2, None);
        assert_eq!(x.feed(&status), Ok(false));
        assert_eq!(x.feed(&ack(1, 0)), Ok(false));
        assert_eq!(x.feed(&ack(2, 0)), Ok(true));
        // A refusal is the kernel's errno.
        let mut x = Exchange::new(2, None);
        assert_eq!(x.feed(&ack(2, libc::EPERM)), Err(libc::EPERM));
    }

    #[test]
    fn the_kernels_default_queue_of_64_is_raised_and_a_larger_one_kept() {
        let s = Status::parse(&status_body(1, 64)).unwrap();
        assert_eq!(
            s,
            Status {
                enabled: 1,
                backlog_limit: 64,
                lost: 97,
            }
        );
        let p = s.wanted().unwrap();
        assert_eq!(word(&p, 0), AUDIT_STATUS_BACKLOG_LIMIT);
        assert_eq!(word(&p, 5), WANTED_BACKLOG);
        // Off, and short: both in one request.
        let p = Status::parse(&status_body(0, 64))
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
            Status::parse(&status_body(1, 65536)).unwrap().wanted(),
            None
        );
        assert_eq!(Status::parse(&status_body(1, 0)).unwrap().wanted(), None);
        // Off with a long queue: only auditing is turned on.
        let p = Status::parse(&status_body(0, 65536))
            .unwrap()
            .wanted()
            .unwrap();
        assert_eq!(word(&p, 0), AUDIT_STATUS_ENABLED);
        // A short body is not a status.
        assert_eq!(Status::parse(&status_body(1, 64)[..24]), None);
    }
}
