//! A WebSocket client for agents in tests and the demo: opens `wss://HOST:PORT/PATH` over
//! HTTP/1.1 (an Upgrade) or HTTP/2 (an RFC 8441 extended CONNECT), sends one text message
//! and returns the first text answer. Trusts the CA bundle `SSL_CERT_FILE` names, as the
//! agents' clients do under Cordon. `WS_HEADERS` adds handshake headers, one `Name: value`
//! a line (a credential, an offer of extensions); `WS_HOLD_SECS` keeps the socket open that
//! long after the answer.

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
    tungstenite::{Message, client::IntoClientRequest, protocol::Role},
};

/// `mode` is `h1` or `h2`.
pub async fn exchange_once(
    mode: &str,
    host: &str,
    port: u16,
    path: &str,
    message: &str,
) -> anyhow::Result<String> {
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
    let tcp = TcpStream::connect((host, port)).await?;
    let name = ServerName::try_from(host.to_owned())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let extra = extra_headers()?;
    match mode {
        "h1" => {
            let mut req = format!("wss://{host}:{port}{path}").into_client_request()?;
            req.headers_mut().extend(extra);
            let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await?;
            exchange(&mut ws, message).await
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
            req.headers_mut().extend(extra);
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            let mut resp = send.send_request(req).await?;
            if resp.status() != http::StatusCode::OK {
                bail!("extended CONNECT answered {}", resp.status());
            }
            let upgraded = hyper::upgrade::on(&mut resp).await?;
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
            exchange(&mut ws, message).await
        }
        other => bail!("mode {other}: h1 or h2"),
    }
}

async fn exchange<S>(ws: &mut WebSocketStream<S>, message: &str) -> anyhow::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(message)).await?;
    loop {
        match ws.next().await.context("the socket closed")?? {
            Message::Text(t) => {
                hold(ws).await;
                return Ok(t.to_string());
            }
            // Answered by tungstenite; a server may send one inside a fragmented message.
            Message::Ping(_) | Message::Pong(_) => continue,
            other => bail!("unexpected {other:?}"),
        }
    }
}

/// With `WS_HOLD_SECS` set, keeps the socket open that long after the answer (or until the
/// server closes it), reading whatever else comes.
async fn hold<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(secs) = std::env::var("WS_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    let read_all = async { while let Some(Ok(_)) = ws.next().await {} };
    // Held the whole time or closed by the server: either way the answer stands.
    tokio::time::timeout(std::time::Duration::from_secs(secs), read_all)
        .await
        .unwrap_or(());
}

fn extra_headers() -> anyhow::Result<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    let Ok(lines) = std::env::var("WS_HEADERS") else {
        return Ok(headers);
    };
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("WS_HEADERS line {line:?}: want `Name: value`"))?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes())?,
            http::HeaderValue::from_str(value.trim())?,
        );
    }
    Ok(headers)
}
