//! One connection to the collector: TCP (keepalive, a user timeout so unacknowledged data
//! fails the connection instead of hanging), optionally TLS on top, with the bytes written to
//! the socket counted so they can be matched against what the peer's TCP stack acknowledged.

use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ForwardError, TlsSettings};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Unacknowledged data older than this fails the connection (TCP_USER_TIMEOUT).
const USER_TIMEOUT_MS: libc::c_int = 30_000;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection.
pub struct Conn {
    io: Box<dyn Io>,
    probe: AckProbe,
}

/// Reads how far the peer's TCP stack has acknowledged what was written.
pub struct AckProbe {
    fd: RawFd,
    written: Arc<AtomicU64>,
}

impl Conn {
    pub async fn open(
        address: &str,
        tls: Option<&TlsSettings>,
        server_name: &str,
    ) -> Result<Conn, ForwardError> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| ForwardError::Connect {
                address: address.into(),
                reason: "timed out".into(),
            })?
            .map_err(|e| ForwardError::Connect {
                address: address.into(),
                reason: e.to_string(),
            })?;
        tune(&tcp).map_err(|e| ForwardError::Connect {
            address: address.into(),
            reason: format!("socket options: {e}"),
        })?;
        let fd = tcp.as_raw_fd();
        let written = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: tcp,
            written: Arc::clone(&written),
        };
        let io: Box<dyn Io> = match tls {
            None => Box::new(counted),
            Some(t) => {
                let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
                    ForwardError::Tls(format!("`{server_name}` is not a valid server name"))
                })?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(&t.config))
                    .connect(name, counted)
                    .await
                    .map_err(|e| ForwardError::Tls(format!("handshake with {address}: {e}")))?;
                Box::new(stream)
            }
        };
        Ok(Conn {
            io,
            probe: AckProbe { fd, written },
        })
    }

    /// The stream, and the probe (valid while the stream is open).
    pub fn into_parts(self) -> (Box<dyn Io>, AckProbe) {
        (self.io, self.probe)
    }
}

impl AckProbe {
    /// Bytes written to the socket so far (TLS records included).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes the peer's TCP stack has acknowledged: written minus the unacknowledged queue.
    pub fn acked(&self) -> Result<u64, ForwardError> {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ on a TCP socket) writes one int. `fd` belongs to the
        // stream, which the session keeps open while it uses the probe.
        let rc = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &mut queued) };
        if rc != 0 {
            return Err(ForwardError::Io(std::io::Error::last_os_error()));
        }
        Ok(self
            .written()
            .saturating_sub(u64::try_from(queued).unwrap_or(0)))
    }
}

fn tune(tcp: &TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let fd = tcp.as_raw_fd();
    let set = |level, name, value: libc::c_int| {
        // SAFETY: setsockopt with a valid int option on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
}

/// The TCP stream, counting what it writes.
struct Counted {
    inner: TcpStream,
    written: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
