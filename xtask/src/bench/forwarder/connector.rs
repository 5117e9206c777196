//! The upstream connector of the bare forwarder: TCP to the one upstream
//! port, then TLS verified by cordon-tls's `UpstreamTls` offering h2 and
//! http/1.1 (the upstream's ALPN answer picks the connection's protocol,
//! as in the daemon's `proxy/upstream.rs`).
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use cordon_tls::{UpstreamAlpn, UpstreamTls};
use hyper_util::{
    client::legacy::connect::{Connected, Connection},
    rt::TokioIo,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Connector {
    port: u16,
    /// The name the upstream's certificate must carry; None for plain HTTP.
    tls_name: Option<Arc<str>>,
    tls: Arc<UpstreamTls>,
}

impl Connector {
    pub fn new(port: u16, tls_name: Option<String>, tls: Arc<UpstreamTls>) -> Self {
        Self {
            port,
            tls_name: tls_name.map(Into::into),
            tls,
        }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Io>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(("127.0.0.1", this.port)).await?;
            tcp.set_nodelay(true)?;
            let io = match this.tls_name {
                None => Io::Plain(tcp),
                Some(name) => Io::Tls(Box::new(
                    this.tls
                        .connect(&name, tcp, UpstreamAlpn::H2OrHttp1)
                        .await?,
                )),
            };
            Ok(TokioIo::new(io))
        })
    }
}

pub enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Io {
    fn connected(&self) -> Connected {
        match self {
            Io::Tls(s) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                Connected::new().negotiated_h2()
            }
            _ => Connected::new(),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
