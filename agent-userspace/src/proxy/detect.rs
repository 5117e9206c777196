//! Protocol detection on every redirected connection, from bytes peeked
//! (not read) off the socket: a TLS ClientHello on any port is intercepted,
//! an HTTP request line is parsed, anything else stays a plain
//! `tcp.connect`. Protocols where the server speaks first (SSH banners come
//! from the server, SMTP, databases) send nothing, so the wait for a first
//! byte is short; a ClientHello that starts but never completes is a stall.
use std::time::Duration;

use cordon_tls::{MAX_PEEK, Peek, peek_client_hello};
use tokio::{net::TcpStream, time::Instant};

/// How long to wait for a client's first byte. Short when raw TCP to the
/// destination is allowed anyway (a misread slow client loses nothing);
/// long when the only alternative to reading actions is a denial, so a
/// client slowed by a loaded host is not refused by mistake.
pub const FIRST_BYTE_WAIT_RAW_ALLOWED: Duration = Duration::from_millis(300);
pub const FIRST_BYTE_WAIT: Duration = Duration::from_secs(5);
const HELLO_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub enum Detected {
    Tls {
        sni: Option<String>,
    },
    Http,
    Other,
    /// The client sent part of a ClientHello or request line and stalled.
    Stalled,
    /// The client reset the connection before sending anything: there is no
    /// one left to connect upstream for. (A plain FIN is not this: a client
    /// may half-close and still wait for a server that speaks first.)
    Reset,
}

pub async fn detect(s: &TcpStream, first_byte_wait: Duration) -> Detected {
    // The peek buffer is allocated only once a byte arrived: connections that
    // carry nothing (probes, resets) cost no 16 KiB zeroing.
    let mut first = [0u8; 1];
    match tokio::time::timeout(first_byte_wait, s.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Detected::Reset,
        _ => return Detected::Other,
    }
    let mut buf = vec![0u8; MAX_PEEK];
    let deadline = Instant::now() + HELLO_WAIT;
    loop {
        // Data is already queued, so peek returns at once with all of it.
        let n = match s.peek(&mut buf).await {
            Ok(0) | Err(_) => return Detected::Other,
            Ok(n) => n,
        };
        match peek_client_hello(&buf[..n]) {
            Peek::Tls(hello) => return Detected::Tls { sni: hello.sni },
            Peek::Http { .. } => return Detected::Http,
            Peek::Other => return Detected::Other,
            Peek::NeedMore(_) if Instant::now() >= deadline => return Detected::Stalled,
            Peek::NeedMore(_) => tokio::time::sleep(POLL).await,
        }
    }
}
