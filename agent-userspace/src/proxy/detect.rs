//! Protocol detection on every redirected connection, from bytes peeked
//! (not read) off the socket: a TLS ClientHello on any port is intercepted,
//! an HTTP request line is parsed, anything else stays a plain
//! `tcp.connect`. Protocols where the server speaks first (SSH, SMTP) send
//! nothing, so the wait for a first byte is short.
use std::time::Duration;

use cordon_tls::{MAX_PEEK, Peek, peek_client_hello};
use tokio::net::TcpStream;

const FIRST_BYTE_WAIT: Duration = Duration::from_millis(300);
const HELLO_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum Detected {
    Tls {
        sni: Option<String>,
    },
    Http,
    Other,
    /// The client sent a partial ClientHello and stalled.
    Stalled,
}

pub async fn detect(s: &TcpStream) -> Detected {
    let mut buf = vec![0u8; MAX_PEEK];
    let mut want = 1usize;
    let mut wait = FIRST_BYTE_WAIT;
    loop {
        let n = match tokio::time::timeout(wait, s.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return Detected::Other,
            Err(_) if want == 1 => return Detected::Other,
            Err(_) => return Detected::Stalled,
        };
        if n == 0 {
            return Detected::Other;
        }
        match peek_client_hello(&buf[..n]) {
            Peek::Tls(hello) => return Detected::Tls { sni: hello.sni },
            Peek::Http { .. } => return Detected::Http,
            Peek::Other => return Detected::Other,
            Peek::NeedMore(more) => {
                if n >= more.min(MAX_PEEK) && n == want {
                    // peek returned what was there already; wait for more.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                want = more.min(MAX_PEEK);
                wait = HELLO_WAIT;
                // Give the kernel a moment to receive the rest.
                tokio::task::yield_now().await;
                if n < want {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}
