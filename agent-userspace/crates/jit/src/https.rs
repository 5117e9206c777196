//! One-shot HTTP/1.1 calls to credential issuers (GitHub's API, STS), over
//! rustls with the roots the caller trusts (the daemon's upstream roots;
//! a test CA in tests). `http://` is allowed for local test servers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// Largest answer read from an issuer (tokens and STS answers are small).
const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0} is not an http(s) URL with a host")]
    Url(String),
    #[error("connecting to {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {host}: {source}")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
    #[error("reading the answer from {host}: {reason}")]
    Body { host: String, reason: String },
    #[error("{host} did not answer within {secs} s")]
    Timeout { host: String, secs: u64 },
}

/// An answer: status and the whole (bounded) body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// `tls` supplies the trusted roots; ALPN is forced to HTTP/1.1.
    pub fn new(tls: &ClientConfig, timeout: Duration) -> HttpClient {
        let mut config = tls.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        HttpClient {
            tls: Arc::new(config),
            timeout,
        }
    }

    /// Sends `req` (absolute URI) and reads the answer.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError> {
        let host = req.uri().host().unwrap_or("").to_string();
        let secs = self.timeout.as_secs();
        tokio::time::timeout(self.timeout, self.exchange(req))
            .await
            .map_err(|_| HttpError::Timeout { host, secs })?
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError> {
        let uri = req.uri().clone();
        let (tls, host, port) = target(&uri)?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| HttpError::Connect {
                host: host.clone(),
                source,
            })?;
        let req = origin_form(req, &uri, &host, port, tls)?;
        if tls {
            let name =
                ServerName::try_from(host.clone()).map_err(|_| HttpError::Url(uri.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| HttpError::Tls {
                    host: host.clone(),
                    source,
                })?;
            round_trip(TokioIo::new(stream), req, &host).await
        } else {
            round_trip(TokioIo::new(tcp), req, &host).await
        }
    }
}

fn target(uri: &Uri) -> Result<(bool, String, u16), HttpError> {
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(HttpError::Url(uri.to_string())),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| HttpError::Url(uri.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((tls, host, port))
}

/// HTTP/1.1 wants the path in the request line and the authority in Host.
fn origin_form(
    req: Request<Full<Bytes>>,
    uri: &Uri,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let (mut parts, body) = req.into_parts();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = path.parse().map_err(|_| HttpError::Url(uri.to_string()))?;
    if !parts.headers.contains_key(http::header::HOST) {
        let default_port = if tls { 443 } else { 80 };
        let authority = if port == default_port {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let value = authority
            .parse()
            .map_err(|_| HttpError::Url(uri.to_string()))?;
        parts.headers.insert(http::header::HOST, value);
    }
    Ok(Request::from_parts(parts, body))
}

async fn round_trip<S>(
    io: S,
    req: Request<Full<Bytes>>,
    host: &str,
) -> Result<HttpResponse, HttpError>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |source| HttpError::Http {
        host: host.to_string(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("issuer connection ended: {e}");
        }
    });
    let res = sender.send_request(req).await.map_err(http);
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let status = res.status();
    let body = Limited::new(res.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| HttpError::Body {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .to_bytes();
    driver.abort();
    Ok(HttpResponse { status, body })
}
