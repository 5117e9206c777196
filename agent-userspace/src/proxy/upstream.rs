//! Connections to upstreams: always to the address the agent dialled (the
//! kernel's record), with TLS verified against the name the agent asked
//! for. Pooled per agent, destination and name, so keep-alive through
//! Cordon costs one upstream handshake per pool, not one per request, and
//! no agent ever rides on another agent's connection.
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use cordon_tls::{UpstreamAlpn, UpstreamTls};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connected, Connection},
    },
    rt::{TokioExecutor, TokioIo},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use super::body::{BoxError, ProxyBody};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_POOLS: usize = 4096;
/// hyper grows a connection's read buffer up to ~400 KiB while a large body
/// streams through; with many downloads at once that was most of the
/// daemon's memory. 64 KiB holds any sane response head and keeps reads
/// large enough that throughput does not suffer.
const UPSTREAM_READ_BUF: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub chain: String,
    pub dst: SocketAddr,
    /// TLS server name; None for plain HTTP.
    pub tls_name: Option<String>,
    /// Offer HTTP/2 as well as HTTP/1.1 (TLS only). The upstream's ALPN
    /// answer picks the protocol per connection, whatever the agent spoke:
    /// hyper translates between the two. Off for protocol upgrades, which
    /// only HTTP/1.1 carries here.
    pub offer_h2: bool,
}

pub type UpstreamClient = Client<Connector, ProxyBody>;

#[derive(Default)]
pub struct Pools {
    clients: Mutex<HashMap<Target, UpstreamClient>>,
}

impl Pools {
    pub fn client(&self, target: &Target, tls: &Arc<UpstreamTls>) -> UpstreamClient {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(target) {
            return c.clone();
        }
        if map.len() >= MAX_POOLS {
            map.clear();
        }
        let connector = Connector {
            dst: target.dst,
            tls: target.tls_name.clone().map(|name| {
                (
                    tls.clone(),
                    name,
                    if target.offer_h2 {
                        UpstreamAlpn::H2OrHttp1
                    } else {
                        UpstreamAlpn::Http1Only
                    },
                )
            }),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .http1_max_buf_size(UPSTREAM_READ_BUF)
            .build(connector);
        map.insert(target.clone(), client.clone());
        client
    }

    /// Drops an agent's pools (kill switch, instance exit).
    pub fn forget_chain(&self, chain: &str) {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|t, _| t.chain != chain && !t.chain.starts_with(&format!("{chain}/")));
    }
}

/// Every pool of the daemon: one `Pools` per proxy core, so a connection
/// only rides upstream connections its own core's runtime drives (no
/// cross-core handoff, no shared lock on the request path), and one for
/// the daemon's own calls (the approval webhook).
pub struct PoolSet {
    pub daemon: Arc<Pools>,
    pub cores: Box<[Arc<Pools>]>,
}

impl PoolSet {
    pub fn new(cores: usize) -> PoolSet {
        PoolSet {
            daemon: Arc::default(),
            cores: (0..cores).map(|_| Arc::default()).collect(),
        }
    }

    /// Core `i`'s pools.
    pub fn core(&self, i: usize) -> Arc<Pools> {
        Arc::clone(&self.cores[i])
    }

    /// Drops an agent's pools on every core (kill switch, instance exit).
    pub fn forget_chain(&self, chain: &str) {
        self.daemon.forget_chain(chain);
        for p in self.cores.iter() {
            p.forget_chain(chain);
        }
    }
}

#[derive(Clone)]
pub struct Connector {
    dst: SocketAddr,
    tls: Option<(Arc<UpstreamTls>, String, UpstreamAlpn)>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<UpstreamIo>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let dst = self.dst;
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst))
                .await
                .map_err(|_| -> BoxError { format!("connect to {dst} timed out").into() })??;
            let _ = tcp.set_nodelay(true);
            let io = match tls {
                None => UpstreamIo::Plain(tcp),
                Some((tls, name, alpn)) => {
                    UpstreamIo::Tls(Box::new(tls.connect(&name, tcp, alpn).await?))
                }
            };
            Ok(TokioIo::new(io))
        })
    }
}

pub enum UpstreamIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        match self {
            UpstreamIo::Plain(_) => Connected::new(),
            UpstreamIo::Tls(s) => {
                if s.get_ref().1.alpn_protocol() == Some(b"h2") {
                    Connected::new().negotiated_h2()
                } else {
                    Connected::new()
                }
            }
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Walks an error's sources for the TLS crate's verification failure, so a
/// bad upstream certificate is reported as such (502, audited), not as a
/// generic connect error.
pub fn tls_verify_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<cordon_tls::TlsError>()
            && matches!(t, cordon_tls::TlsError::UpstreamVerify { .. })
        {
            return Some(t.to_string());
        }
        cur = e.source();
    }
    None
}
