//! Byte splicing between the agent and its upstream for flows Cordon cannot
//! read (raw `tcp.connect`). The bytes move in the kernel: splice(2) takes
//! them from one socket into a pipe and from the pipe into the other socket,
//! never through a userspace buffer. Each direction waits for its source to
//! become readable holding nothing, borrows a pipe from its thread's pool
//! (`pipes`) for as long as the source has bytes, and gives it back once the
//! pipe is empty: thousands of idle flows (database pools, held sockets)
//! cost only their sockets. A slow reader stalls the other side's reads (the
//! pipe stays full until the reader takes its bytes: backpressure), an end
//! of stream half-closes that direction only, and an error in either
//! direction ends both. Dropping the future (kill switch, drain) closes both
//! sockets and any pipe that still held bytes.
//!
//! Why splice(2) and not a sockmap redirect: see docs/enforcement.md.
mod pipes;

use std::{
    io::{self, ErrorKind},
    net::Shutdown,
    os::fd::AsFd,
    sync::atomic::{AtomicU64, Ordering},
};

use nix::fcntl::{SpliceFFlags, splice as splice2};
use tokio::{io::Interest, net::TcpStream};

/// At most this much is moved per splice(2) call: the default pipe's size.
const CHUNK: usize = 64 * 1024;

pub struct SpliceStats {
    pub up: u64,
    pub down: u64,
}

/// Moves bytes both ways until both directions ended, or one failed. The
/// counts are of bytes delivered to the other side, also when a direction
/// failed part way.
pub async fn splice(client: TcpStream, upstream: TcpStream) -> SpliceStats {
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    if let Err(e) = tokio::try_join!(
        pump(&client, &upstream, &up),
        pump(&upstream, &client, &down)
    ) {
        tracing::debug!("splice ended: {e}");
    }
    SpliceStats {
        up: up.into_inner(),
        down: down.into_inner(),
    }
}

/// Moves `from` to `to` until `from` ends, then half-closes `to`.
async fn pump(from: &TcpStream, to: &TcpStream, moved: &AtomicU64) -> io::Result<()> {
    loop {
        from.readable().await?;
        let mut lent = pipes::borrow()?;
        loop {
            lent.mark_filled();
            let n = match from.try_io(Interest::READABLE, || {
                splice2(
                    from.as_fd(),
                    None,
                    lent.pipe().write.as_fd(),
                    None,
                    CHUNK,
                    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
                )
                .map_err(io::Error::from)
            }) {
                Ok(n) => n,
                // Drained: the pipe is empty and goes back before waiting again.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    lent.mark_empty();
                    break;
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                lent.mark_empty();
                drop(lent);
                return socket2::SockRef::from(to).shutdown(Shutdown::Write);
            }
            drain(&lent, n, to, moved).await?;
        }
    }
}

/// Moves the `n` bytes in the pipe to `to`, waiting while `to` is full.
async fn drain(
    lent: &pipes::Lent,
    mut n: usize,
    to: &TcpStream,
    moved: &AtomicU64,
) -> io::Result<()> {
    while n > 0 {
        to.writable().await?;
        match to.try_io(Interest::WRITABLE, || {
            splice2(
                lent.pipe().read.as_fd(),
                None,
                to.as_fd(),
                None,
                n,
                SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
            )
            .map_err(io::Error::from)
        }) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(m) => {
                n -= m;
                moved.fetch_add(m as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
