//! Recording HTTP and HTTPS upstreams that live inside a test namespace.

mod record;
mod reply;
pub(crate) mod serve;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio_rustls::TlsAcceptor;

pub use record::{ConnInfo, Recorded};
use reply::{Behaviour, Route};
pub use reply::{Gzip, Reply};

use crate::error::Result;
use crate::netns::NetNs;
use crate::process::wait_until;
use crate::server_thread::{ServerThread, bind_all_tcp};
use crate::tls::{SERVER_ALPN, TestCa};

/// Request bodies above this are refused with 413 (and still recorded, without body).
pub const MAX_BODY: usize = 16 << 20;

#[derive(Debug, Default)]
struct Shared {
    recorded: Mutex<Vec<Recorded>>,
    behaviour: Mutex<Behaviour>,
}

/// An HTTP upstream recording every request. See [`HttpsServer`] for TLS.
#[derive(Debug)]
pub struct HttpServer {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    _thread: ServerThread,
}

impl HttpServer {
    /// Plain HTTP on port 80 of the namespace's primary IPv4 and IPv6 addresses.
    pub fn start(ns: &NetNs) -> Result<Self> {
        Self::start_on(ns, &[(ns.v4().into(), 80), (ns.v6().into(), 80)])
    }

    /// Plain HTTP on the given namespace addresses.
    pub fn start_on(ns: &NetNs, addrs: &[(IpAddr, u16)]) -> Result<Self> {
        Self::spawn("http", ns, addrs, None)
    }

    fn spawn(
        kind: &str,
        ns: &NetNs,
        addrs: &[(IpAddr, u16)],
        tls: Option<TlsAcceptor>,
    ) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let for_serve = shared.clone();
        let (thread, bound) = ServerThread::spawn(
            &format!("{kind}-{}", ns.name()),
            Some(ns.path()),
            bind_all_tcp(binds),
            move |listeners| async move {
                for listener in listeners {
                    let (shared, tls) = (for_serve.clone(), tls.clone());
                    tokio::spawn(serve::accept_forever(listener, move |stream, peer| {
                        let shared = shared.clone();
                        let handler = move |req, info| handle(shared.clone(), req, info);
                        serve::serve_conn(stream, peer, tls.clone(), handler)
                    }));
                }
                std::future::pending::<()>().await;
            },
        )?;
        Ok(Self {
            shared,
            addrs: bound,
            _thread: thread,
        })
    }

    /// Addresses the server listens on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Snapshot of every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Recorded> {
        lock(&self.shared.recorded).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.recorded).len()
    }

    /// Forget what was recorded so far.
    pub fn clear(&self) {
        lock(&self.shared.recorded).clear();
    }

    /// Wait (bounded) until at least `n` requests were recorded.
    pub fn wait_for_count(&self, n: usize, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("{n} requests at {:?}", self.addrs),
            timeout,
            || self.count() >= n,
        )
    }

    /// Answer `method` (`None` = any) on `path` (exact path, or path+query) with `reply`.
    pub fn route(&self, method: Option<Method>, path: &str, reply: Reply) {
        lock(&self.shared.behaviour).routes.push(Route {
            method,
            path: path.to_owned(),
            reply,
        });
    }

    /// Compress replies with gzip: never (the default), when asked, or always.
    pub fn gzip(&self, mode: Gzip) {
        lock(&self.shared.behaviour).gzip = mode;
    }

    /// The default reply's `echo` object empty again.
    pub fn echo_no_headers(&self) {
        lock(&self.shared.behaviour).echo_headers.clear();
    }

    /// Include request header `name` in the default reply's `echo` object.
    pub fn echo_header(&self, name: &str) {
        lock(&self.shared.behaviour)
            .echo_headers
            .push(name.to_ascii_lowercase());
    }
}

/// Which HTTP versions an HTTPS test server offers in ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaks {
    Both,
    Http1Only,
    Http2Only,
}

/// The same recording server over TLS 1.3/1.2 with `h2` and `http/1.1` ALPN.
#[derive(Debug)]
pub struct HttpsServer {
    inner: HttpServer,
    names: Vec<String>,
}

impl HttpsServer {
    /// HTTPS on port 443 of the namespace's primary addresses, certificate for `names`.
    pub fn start(ns: &NetNs, ca: &TestCa, names: &[&str]) -> Result<Self> {
        Self::start_on(
            ns,
            ca,
            names,
            &[(ns.v4().into(), 443), (ns.v6().into(), 443)],
        )
    }

    pub fn start_on(
        ns: &NetNs,
        ca: &TestCa,
        names: &[&str],
        addrs: &[(IpAddr, u16)],
    ) -> Result<Self> {
        Self::start_speaking(ns, ca, names, addrs, Speaks::Both)
    }

    /// HTTPS that offers only the HTTP versions `speaks` names in ALPN; a
    /// client that offers none of them fails the handshake.
    pub fn start_speaking(
        ns: &NetNs,
        ca: &TestCa,
        names: &[&str],
        addrs: &[(IpAddr, u16)],
        speaks: Speaks,
    ) -> Result<Self> {
        let alpn: &[&[u8]] = match speaks {
            Speaks::Both => SERVER_ALPN,
            Speaks::Http1Only => &[b"http/1.1"],
            Speaks::Http2Only => &[b"h2"],
        };
        let acceptor = TlsAcceptor::from(ca.server_config(names, alpn)?);
        Ok(Self {
            inner: HttpServer::spawn("https", ns, addrs, Some(acceptor))?,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        })
    }

    /// Names the certificate is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl std::ops::Deref for HttpsServer {
    type Target = HttpServer;

    fn deref(&self) -> &HttpServer {
        &self.inner
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    conn: Arc<ConnInfo>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let (body, too_large) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => (collected.to_bytes().to_vec(), false),
        Err(_) => (Vec::new(), true),
    };
    let path = parts.uri.path().to_owned();
    let rec = Recorded {
        conn: (*conn).clone(),
        version: format!("{:?}", parts.version),
        method: parts.method.to_string(),
        host: parts
            .headers
            .get(http::header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| parts.uri.authority().map(|a| a.to_string())),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let reply = if too_large {
        Reply::status(413)
    } else {
        let behaviour = lock(&shared.behaviour);
        let reply = behaviour
            .find(&parts.method, &path, &rec.path)
            .unwrap_or_else(|| behaviour.default_reply(&rec));
        behaviour.encode(reply, rec.header("accept-encoding"))
    };
    lock(&shared.recorded).push(rec);
    to_response(reply)
}

pub(crate) fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::from_static(b"bad canned reply")));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

/// A panicking test thread must not hide what the server recorded.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
