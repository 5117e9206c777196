//! The slice of Cordon's proxy these tests need, built only from the
//! library's public API: name the action, verify the agent's signature with
//! its instance's placeholder, re-sign with the instance's STS session,
//! forward to moto with the body streamed through `SignedBody`.
//!
//! A `Tamper` alters a request after the agent signed it, standing for
//! anything that changes a request in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use cordon_jit::aws::{
    PayloadMode, RequestHead, SigError, SignedBodyError, aws_action, resign, verify,
};
use cordon_jit::{InstanceId, JitCredentials};
use cordon_vault::AwsRoleEntry;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Changes the object key in the path (a signed part of the request).
    RenameKey,
    /// Flips one byte of the body (covered by the payload hash).
    FlipBodyByte,
}

/// What the proxy did with one request.
#[derive(Debug)]
pub struct Event {
    pub action: Option<String>,
    /// What the verified signature said about the body.
    pub payload: Option<PayloadMode>,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Forwarded(StatusCode),
    Refused(SigError),
    /// The body failed its check while streaming; the upstream got a
    /// truncated request.
    BodyRefused(SigError),
}

pub struct State {
    pub instance: InstanceId,
    /// How often the `aws-role` entry was read (only to assume a role).
    pub entry_loads: std::sync::atomic::AtomicUsize,
    pub jit: JitCredentials,
    entry: AwsRoleEntry,
    upstream: SocketAddr,
    pub events: Mutex<Vec<Event>>,
    pub tamper: Mutex<Option<Tamper>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    tls: bool,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Serves plain HTTP, or HTTPS with `tls` (as Cordon does once it has
    /// terminated the agent's TLS).
    pub async fn start(
        instance: InstanceId,
        entry: AwsRoleEntry,
        moto: SocketAddr,
        tls_server: Option<Arc<rustls::ServerConfig>>,
    ) -> Proxy {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        // GitHub is not used here; its tokens are part of the same state.
        let jit = JitCredentials::new(&tls, "https://api.github.com", &format!("http://{moto}"))
            .expect("issuer URLs");
        let state = Arc::new(State {
            instance,
            entry_loads: std::sync::atomic::AtomicUsize::new(0),
            jit,
            entry,
            upstream: moto,
            events: Mutex::new(Vec::new()),
            tamper: Mutex::new(None),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let st = state.clone();
        let is_tls = tls_server.is_some();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let tls = tls_server.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(&st, req).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    let served = match tls {
                        Some(config) => {
                            match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
                                Ok(s) => builder.serve_connection(TokioIo::new(s), svc).await,
                                Err(e) => {
                                    eprintln!("proxy TLS: {e}");
                                    return;
                                }
                            }
                        }
                        None => builder.serve_connection(TokioIo::new(stream), svc).await,
                    };
                    if let Err(e) = served {
                        eprintln!("proxy connection: {e}");
                    }
                });
            }
        });
        Proxy {
            addr,
            state,
            task,
            tls: is_tls,
        }
    }

    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.state.events.lock().expect("events"))
    }
}

fn refusal(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>CordonRefused</Code><Message>{message}</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("refusal response")
}

async fn handle(st: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (mut parts, incoming) = req.into_parts();
    let tamper = *st.tamper.lock().expect("tamper");
    if tamper == Some(Tamper::RenameKey) {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let renamed = pq.replacen("/docs/", "/docs/x", 1);
        parts.uri = renamed.parse::<Uri>().expect("renamed path");
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // The payload hash is declared (S3): stream the body through the
    // check. Otherwise the signature covers the body: it is needed first.
    let streams = parts.headers.contains_key("x-amz-content-sha256");
    let (buffered, mut streamed) = if streams {
        (None, Some(incoming))
    } else {
        let bytes = match incoming.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return refusal(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        (Some(bytes), None)
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let head = RequestHead::new(
        &parts.method,
        &host,
        &path,
        query.as_deref(),
        &parts.headers,
    );
    let action = aws_action(&head, buffered.as_deref()).map(|a| a.name);
    let payload: Mutex<Option<PayloadMode>> = Mutex::new(None);
    let record = |outcome: Outcome| {
        st.events.lock().expect("events").push(Event {
            action: action.clone(),
            payload: payload.lock().expect("payload").clone(),
            outcome,
        });
    };
    let Some(placeholder) = st.jit.aws_placeholders.for_instance(&st.instance) else {
        return refusal(StatusCode::FORBIDDEN, "instance has no placeholder");
    };
    let now = SystemTime::now();
    let verified = match verify(&head, &placeholder, buffered.as_deref(), now) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            record(Outcome::Refused(e));
            return refusal(StatusCode::FORBIDDEN, &msg);
        }
    };
    *payload.lock().expect("payload") = Some(verified.payload.clone());
    let session = st
        .jit
        .aws_sessions
        .session_lazy(&st.instance, "aws-s3", "aws", now, || async {
            st.entry_loads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(st.entry.clone())
        })
        .await;
    let session = match session {
        Ok(s) => s,
        Err(e) => return refusal(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let mut resigned = match resign(&head, verified, &session, now) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            record(Outcome::Refused(e));
            return refusal(StatusCode::FORBIDDEN, &msg);
        }
    };
    let body: BoxBody<Bytes, BoxError> = match (buffered, streamed.take()) {
        (Some(b), _) => Full::new(b).map_err(|never| match never {}).boxed(),
        (None, Some(incoming)) => {
            let flip = tamper == Some(Tamper::FlipBodyByte);
            let mut flipped = false;
            incoming
                .map_frame(move |frame| match frame.into_data() {
                    Ok(data) if flip && !flipped && !data.is_empty() => {
                        flipped = true;
                        let mut v = data.to_vec();
                        v[0] ^= 1;
                        hyper::body::Frame::data(Bytes::from(v))
                    }
                    Ok(data) => hyper::body::Frame::data(data),
                    Err(frame) => frame,
                })
                .map_err(|e| Box::new(e) as BoxError)
                .boxed()
        }
        (None, None) => unreachable!("the body is either buffered or streamed"),
    };
    let body = resigned.body(body);
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(resigned.path_and_query.as_str())
        .body(body)
        .expect("forwarded request");
    *out.headers_mut() = resigned.headers.clone();
    match forward(st.upstream, out).await {
        Ok(res) => {
            record(Outcome::Forwarded(res.status()));
            res
        }
        Err(e) => match body_refusal(e.as_ref()) {
            Some(sig) => {
                let msg = sig.to_string();
                record(Outcome::BodyRefused(sig));
                refusal(StatusCode::FORBIDDEN, &msg)
            }
            None => {
                let mut chain = e.to_string();
                let mut cur = e.source();
                while let Some(c) = cur {
                    chain.push_str(&format!(": {c}"));
                    cur = c.source();
                }
                refusal(StatusCode::BAD_GATEWAY, &chain)
            }
        },
    }
}

/// The `SigError` a failed forward carries, if the body check caused it.
fn body_refusal(e: &(dyn std::error::Error + 'static)) -> Option<SigError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(SignedBodyError::Signature(sig)) =
            err.downcast_ref::<SignedBodyError<BoxError>>()
        {
            return Some(sig.clone());
        }
        cur = err.source();
    }
    None
}

async fn forward<B>(
    upstream: SocketAddr,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, BoxError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let tcp = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(conn);
    let res = sender.send_request(req).await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(Box::new(e));
        }
    };
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await?.to_bytes();
    driver.abort();
    let mut out = Response::from_parts(parts, Full::new(bytes));
    out.headers_mut().remove(http::header::TRANSFER_ENCODING);
    out.headers_mut().remove(http::header::CONNECTION);
    Ok(out)
}
