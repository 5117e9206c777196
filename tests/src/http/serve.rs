//! Connection plumbing shared by the HTTP, HTTPS and git servers: accept, optional TLS
//! handshake, then HTTP/1.1 (keep-alive) or HTTP/2 via hyper-util's auto builder.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::ConnInfo;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept on `listener` forever, spawning `on_conn` per connection.
pub(crate) async fn accept_forever<F, Fut>(listener: TcpListener, on_conn: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(on_conn(stream, peer));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serve HTTP on one accepted connection, wrapping it in TLS first if `tls` is set.
pub(crate) async fn serve_conn<H, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    handler: H,
) where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let mut info = ConnInfo {
        peer,
        local,
        tls: tls.is_some(),
        sni: None,
        alpn: None,
    };
    match tls {
        None => serve_http(TokioIo::new(stream), Arc::new(info), handler).await,
        Some(acceptor) => {
            let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            let tls_stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let (_, session) = tls_stream.get_ref();
            info.sni = session.server_name().map(str::to_owned);
            info.alpn = session
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            serve_http(TokioIo::new(tls_stream), Arc::new(info), handler).await;
        }
    }
}

async fn serve_http<IO, H, Fut>(io: TokioIo<IO>, info: Arc<ConnInfo>, handler: H)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let response = handler(req, info.clone());
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with error");
    }
}
