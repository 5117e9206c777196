//! `TestDns`: the upstream resolver the daemon is pointed at (`--dns-upstream`). Answers A and
//! AAAA from a table, NXDOMAIN otherwise, over UDP and TCP on one loopback port, and counts
//! queries per name.

mod client;
mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub use client::{DnsAnswer, dns_query, dns_query_tcp};
pub use hickory_proto::op::ResponseCode;
pub use hickory_proto::rr::RecordType;
pub use wire::QueryLog;

use crate::error::{Error, Result};
use crate::process::wait_until;
use crate::server_thread::{ServerThread, bind_tcp, bind_udp};

const DEFAULT_TTL: u32 = 60;
const TCP_IDLE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Shared {
    table: Mutex<HashMap<String, Vec<IpAddr>>>,
    ttl: Mutex<u32>,
    log: Mutex<Vec<QueryLog>>,
}

#[derive(Debug)]
pub struct TestDns {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _thread: ServerThread,
}

impl TestDns {
    /// Start on `127.0.0.1:<ephemeral>` (UDP and TCP) with an empty table.
    pub fn start() -> Result<Self> {
        let shared = Arc::new(Shared {
            table: Mutex::new(HashMap::new()),
            ttl: Mutex::new(DEFAULT_TTL),
            log: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let (thread, addr) =
            ServerThread::spawn("test-dns", None, bind_pair, move |(udp, tcp)| async move {
                tokio::spawn(serve_udp(udp, s.clone()));
                tokio::spawn(serve_tcp(tcp, s));
                std::future::pending::<()>().await;
            })?;
        Ok(Self {
            shared,
            addr,
            _thread: thread,
        })
    }

    /// Start with `entries` already in the table.
    pub fn start_with(entries: &[(&str, &[IpAddr])]) -> Result<Self> {
        let dns = Self::start()?;
        for (name, addrs) in entries {
            dns.set(name, addrs);
        }
        Ok(dns)
    }

    /// Address for `--dns-upstream`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Make `name` resolve to `addrs` (replacing earlier addresses). An empty list makes the
    /// name exist with no addresses (NODATA).
    pub fn set(&self, name: &str, addrs: &[IpAddr]) {
        lock(&self.shared.table).insert(wire::normalize(name), addrs.to_vec());
    }

    /// Make `name` NXDOMAIN again.
    pub fn remove(&self, name: &str) {
        lock(&self.shared.table).remove(&wire::normalize(name));
    }

    pub fn set_ttl(&self, ttl: u32) {
        *lock(&self.shared.ttl) = ttl;
    }

    /// Queries received for `name` (any type, case-insensitive, trailing dot ignored).
    pub fn queries(&self, name: &str) -> usize {
        let name = wire::normalize(name);
        lock(&self.shared.log)
            .iter()
            .filter(|q| q.name == name)
            .count()
    }

    pub fn total_queries(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Every well-formed query in arrival order.
    pub fn log(&self) -> Vec<QueryLog> {
        lock(&self.shared.log).clone()
    }

    pub fn wait_for_queries(&self, name: &str, n: usize, timeout: Duration) -> Result<()> {
        wait_until(&format!("{n} DNS queries for {name}"), timeout, || {
            self.queries(name) >= n
        })
    }
}

/// UDP on an ephemeral port, then TCP on the same port (retrying if TCP's is taken).
fn bind_pair() -> Result<(SocketAddr, (UdpSocket, TcpListener))> {
    let mut last = None;
    for _ in 0..20 {
        let udp = bind_udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = udp.local_addr().map_err(|source| Error::Io {
            what: "local address of DNS UDP socket".into(),
            source,
        })?;
        match bind_tcp(addr) {
            Ok(tcp) => return Ok((addr, (udp, tcp))),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Setup("could not bind DNS sockets".into())))
}

fn answer(shared: &Shared, request: &[u8], udp: bool) -> Option<Vec<u8>> {
    let ttl = *lock(&shared.ttl);
    let (bytes, log) = wire::respond(request, &lock(&shared.table), ttl, udp)?;
    if let Some(log) = log {
        lock(&shared.log).push(log);
    }
    Some(bytes)
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if let Some(reply) = answer(&shared, &buf[..n], true) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    crate::http::serve::accept_forever(listener, move |stream, _| {
        serve_tcp_conn(stream, shared.clone())
    })
    .await;
}

/// RFC 1035 4.2.2: each message is preceded by a two-byte length; several may share a connection.
async fn serve_tcp_conn(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut msg)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(reply) = answer(&shared, &msg, false) else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_all(&reply_len.to_be_bytes()).await.is_err()
            || stream.write_all(&reply).await.is_err()
        {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
