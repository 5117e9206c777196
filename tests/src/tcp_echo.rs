//! A TCP echo server inside a namespace, counting connections and echoed bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Result;
use crate::http::serve::accept_forever;
use crate::netns::NetNs;
use crate::process::wait_until;
use crate::server_thread::{ServerThread, bind_all_tcp};

/// A connection idle this long is closed so nothing lingers.
const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug)]
pub struct TcpEcho {
    counters: Arc<Counters>,
    addrs: Vec<SocketAddr>,
    _thread: ServerThread,
}

impl TcpEcho {
    /// Echo on `port` of the namespace's primary IPv4 and IPv6 addresses.
    pub fn start(ns: &NetNs, port: u16) -> Result<Self> {
        Self::start_on(ns, &[(ns.v4().into(), port), (ns.v6().into(), port)])
    }

    pub fn start_on(ns: &NetNs, addrs: &[(IpAddr, u16)]) -> Result<Self> {
        let counters = Arc::new(Counters::default());
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let c = counters.clone();
        let (thread, addrs) = ServerThread::spawn(
            &format!("echo-{}", ns.name()),
            Some(ns.path()),
            bind_all_tcp(binds),
            move |listeners| async move {
                for listener in listeners {
                    let c = c.clone();
                    tokio::spawn(accept_forever(listener, move |stream, _peer| {
                        c.connections.fetch_add(1, Ordering::Relaxed);
                        echo(stream, c.clone())
                    }));
                }
                std::future::pending::<()>().await;
            },
        )?;
        Ok(Self {
            counters,
            addrs,
            _thread: thread,
        })
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Bytes received (and echoed) so far.
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }

    pub fn wait_for_connections(&self, n: u64, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("{n} connections at {:?}", self.addrs),
            timeout,
            || self.connections() >= n,
        )
    }
}

async fn echo(mut stream: tokio::net::TcpStream, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
