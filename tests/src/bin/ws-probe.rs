//! Run as an agent: `ws-probe h1|h2 HOST PORT PATH MESSAGE` opens a WebSocket to
//! `wss://HOST:PORT/PATH` over HTTP/1.1 (an Upgrade) or HTTP/2 (an RFC 8441 extended CONNECT),
//! sends MESSAGE and prints the answer. Trusts the CA bundle `SSL_CERT_FILE` names, as the
//! agents' clients do under Cordon.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::Role},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, host, port, path, message] = args.as_slice() else {
        bail!("usage: ws-probe h1|h2 HOST PORT PATH MESSAGE");
    };
    let bundle = std::env::var("SSL_CERT_FILE").context("SSL_CERT_FILE")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&bundle)? {
        roots.add(cert?)?;
    }
    let alpn: &[u8] = if mode == "h2" { b"h2" } else { b"http/1.1" };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect((host.as_str(), port.parse::<u16>()?)).await?;
    let name = ServerName::try_from(host.clone())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let answer = match mode.as_str() {
        "h1" => {
            let url = format!("wss://{host}:{port}{path}");
            let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await?;
            exchange(&mut ws, message).await?
        }
        "h2" => {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await?;
            tokio::spawn(conn);
            let mut req = http::Request::builder()
                .method(http::Method::CONNECT)
                .version(http::Version::HTTP_2)
                .uri(format!("https://{host}:{port}{path}"))
                .header("sec-websocket-version", "13")
                .body(Empty::<bytes::Bytes>::new())?;
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            let mut resp = send.send_request(req).await?;
            if resp.status() != http::StatusCode::OK {
                bail!("extended CONNECT answered {}", resp.status());
            }
            let upgraded = hyper::upgrade::on(&mut resp).await?;
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
            exchange(&mut ws, message).await?
        }
        other => bail!("mode {other}: h1 or h2"),
    };
    println!("{answer}");
    Ok(())
}

async fn exchange<S>(ws: &mut WebSocketStream<S>, message: &str) -> anyhow::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(message)).await?;
    match ws.next().await.context("the socket closed")?? {
        Message::Text(t) => Ok(t.to_string()),
        other => bail!("unexpected {other:?}"),
    }
}
