//! One route of the bare forwarder: accept, terminate TLS (or not), serve
//! HTTP/1.1 or HTTP/2 as the client negotiated, and send every request to
//! the route's upstream over the pooled client.
use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use cordon_tls::{Alpn, CertAuthority, UpstreamTls};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};

use super::connector::Connector;

pub struct Route {
    tls: bool,
    pub listen: u16,
    host: String,
    port: u16,
}

impl Route {
    /// `tls|plain:LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT`.
    pub fn parse(s: &str) -> Result<Route, String> {
        let bad =
            || format!("bad route {s:?}: (tls|plain):LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT");
        let parts: Vec<&str> = s.split(':').collect();
        let [mode, listen, host, port] = parts[..] else {
            return Err(bad());
        };
        let tls = match mode {
            "tls" => true,
            "plain" => false,
            _ => return Err(bad()),
        };
        Ok(Route {
            tls,
            listen: listen.parse().map_err(|_| bad())?,
            host: host.to_string(),
            port: port.parse().map_err(|_| bad())?,
        })
    }
}

type Body = Either<Incoming, Full<Bytes>>;

/// What every connection of a route shares: the CA, the upstream's
/// authority and one pooled client (Cordon keeps one per agent and
/// destination; here there is one of each).
#[derive(Clone)]
pub struct Forwarder {
    ca: CertAuthority,
    tls: bool,
    /// `https://host:port` or `http://host:port`: the request's path and
    /// query are appended, as Cordon rebuilds the URI on the authority the
    /// agent named.
    base: Arc<str>,
    client: Client<Connector, Incoming>,
}

impl Forwarder {
    pub fn new(route: Route, ca: CertAuthority, upstream_tls: Arc<UpstreamTls>) -> Self {
        let scheme = if route.tls { "https" } else { "http" };
        let base = format!("{scheme}://{}:{}", route.host, route.port);
        let tls_name = route.tls.then(|| route.host.clone());
        let connector = Connector::new(route.port, tls_name, upstream_tls);
        // The daemon's pool settings (proxy/upstream.rs).
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .http1_max_buf_size(64 * 1024)
            .build(connector);
        Self {
            ca,
            tls: route.tls,
            base: base.into(),
            client,
        }
    }

    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let fwd = self.clone();
            tokio::spawn(async move {
                if !fwd.tls {
                    fwd.http(tcp, false).await;
                    return;
                }
                // No SNI: the leaf names the loopback address, as Cordon
                // falls back to the address the agent dialled.
                match fwd.ca.accept(tcp, "127.0.0.1").await {
                    Ok(conn) => {
                        let h2 = conn.alpn() == Alpn::H2;
                        fwd.http(conn.stream, h2).await;
                    }
                    Err(e) => eprintln!("bench-forwarder: TLS accept: {e}"),
                }
            });
        }
    }

    async fn http<IO>(self, io: IO, h2: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let service = hyper::service::service_fn(move |req| {
            let fwd = self.clone();
            async move { Ok::<_, Infallible>(fwd.forward(req).await) }
        });
        // Connection errors (a client leaving at the end of a run) are the
        // client's business; the bench reads its figures from the client.
        let _ = if h2 {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await
        } else {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
        };
    }

    async fn forward(&self, req: Request<Incoming>) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match format!("{}{pq}", self.base).parse::<Uri>() {
            Ok(u) => u,
            Err(e) => return answer(StatusCode::BAD_REQUEST, format!("bad target: {e}")),
        };
        // As Cordon does: the authority travels in the URI and the upstream
        // connection's ALPN picks the version, whatever the client spoke.
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        parts.version = Version::HTTP_11;
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => {
                let (mut rparts, rbody) = resp.into_parts();
                strip_hop_by_hop(&mut rparts.headers);
                Response::from_parts(rparts, Either::Left(rbody))
            }
            Err(e) => answer(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
        }
    }
}

fn answer(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *r.status_mut() = status;
    r
}

/// RFC 9110 7.6.1: the connection-specific fields, and any the
/// `Connection` header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        h.remove(n);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_mode_listen_port_and_upstream() {
        let r = Route::parse("tls:4443:localhost:8443").unwrap();
        assert!(r.tls);
        assert_eq!(
            (r.listen, r.host.as_str(), r.port),
            (4443, "localhost", 8443)
        );
        assert!(!Route::parse("plain:80:127.0.0.1:8080").unwrap().tls);
        for bad in ["udp:1:h:2", "tls:1:h", "tls:x:h:2", "tls:1:h:99999"] {
            assert!(Route::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, X-Trace".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-trace", "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }
}
