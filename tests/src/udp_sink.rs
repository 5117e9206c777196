//! A UDP sink inside a namespace: counts datagrams so a test can prove none arrived.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::Result;
use crate::netns::NetNs;
use crate::process::wait_until;
use crate::server_thread::{ServerThread, bind_udp};

#[derive(Debug, Default)]
struct Counters {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    sources: Mutex<Vec<SocketAddr>>,
}

#[derive(Debug)]
pub struct UdpSink {
    counters: Arc<Counters>,
    addrs: Vec<SocketAddr>,
    _thread: ServerThread,
}

impl UdpSink {
    /// Listen on `port` of the namespace's primary IPv4 and IPv6 addresses.
    pub fn start(ns: &NetNs, port: u16) -> Result<Self> {
        Self::start_on(ns, &[(ns.v4().into(), port), (ns.v6().into(), port)])
    }

    pub fn start_on(ns: &NetNs, addrs: &[(IpAddr, u16)]) -> Result<Self> {
        let counters = Arc::new(Counters::default());
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let c = counters.clone();
        let (thread, addrs) = ServerThread::spawn(
            &format!("udp-{}", ns.name()),
            Some(ns.path()),
            move || {
                let sockets = binds
                    .iter()
                    .map(|&a| bind_udp(a))
                    .collect::<Result<Vec<_>>>()?;
                Ok((binds, sockets))
            },
            move |sockets| async move {
                for socket in sockets {
                    tokio::spawn(count(socket, c.clone()));
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

    pub fn datagrams(&self) -> u64 {
        self.counters.datagrams.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }

    /// Source address of every datagram received.
    pub fn sources(&self) -> Vec<SocketAddr> {
        self.counters
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn wait_for_datagrams(&self, n: u64, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("{n} datagrams at {:?}", self.addrs),
            timeout,
            || self.datagrams() >= n,
        )
    }
}

async fn count(socket: tokio::net::UdpSocket, c: Arc<Counters>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                c.datagrams.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(n as u64, Ordering::Relaxed);
                c.sources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(from);
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp recv failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
