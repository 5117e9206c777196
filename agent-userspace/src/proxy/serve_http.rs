//! hyper's server for a connection Cordon can read: HTTP/1 behind the
//! framing gate (`h1guard`), or HTTP/2. Each request goes to
//! `pipeline::handle`; a head the gate refused, or one hyper could not
//! parse, is recorded and answered here.
use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use cordon_audit::EventKind;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Map;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::watch,
};

use super::{
    answer,
    body::ProxyBody,
    env::Env,
    h1guard::{Guard, Link, RefusedHead},
    pipeline,
};
use crate::request::{Actor, Ask, Attribution, Kind, Refusal, record::record_refusal};

/// Header blocks larger than this are refused.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long an HTTP/1 head may take to arrive, and how long a kept-alive
/// connection may sit idle before its next one: a slow-head or idle
/// connection cannot hold its slot (and its buffers) for ever.
pub const HEAD_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What is known about the connection the requests arrive on.
pub struct HttpCtx {
    pub env: Env,
    pub actor: Actor,
    /// The name the agent's TLS ClientHello asked for.
    pub sni: Option<String>,
    pub tls: bool,
    /// The name the agent resolved (through Cordon) to the address it dialled.
    pub resolved: Option<String>,
    pub h2: bool,
    /// HTTP/1 only: tells the framing gate which requests switched protocols.
    pub upgrades: Option<Arc<Link>>,
}

pub async fn serve<IO>(mut ctx: HttpCtx, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if ctx.h2 {
        let ctx = Arc::new(ctx);
        let (handler, first) = service(&ctx);
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            // WebSockets over HTTP/2 (RFC 8441): see `pipeline::ws_h2`.
            .enable_connect_protocol()
            .serve_connection(TokioIo::new(io), handler);
        let result = until_drained(&ctx, first, conn, |c| c.graceful_shutdown()).await;
        if let Err(e) = result {
            tracing::debug!(agent = %ctx.actor.agent.chain_display(), "h2 connection ended: {e}");
        }
        return;
    }
    let (guarded, link, mut refused) = Guard::new(io, MAX_HEADER_BYTES);
    ctx.upgrades = Some(link);
    let ctx = Arc::new(ctx);
    let (handler, first) = service(&ctx);
    // Half-close: when the gate ends the stream at a refused head, hyper
    // still owes (and writes) the answers to the requests before it.
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .max_buf_size(MAX_HEADER_BYTES * 2)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_READ_TIMEOUT)
        .serve_connection(TokioIo::new(guarded), handler)
        .with_upgrades();
    let result = until_drained(&ctx, first, conn, |c| c.graceful_shutdown()).await;
    // A head the gate refused: hyper answered what came before it and let
    // go of the connection, which is back here to be answered.
    if let Ok(head) = refused.try_recv() {
        refuse_head(&ctx, head).await;
        return;
    }
    if let Err(e) = result {
        if e.is_parse() || e.is_parse_too_large() {
            // hyper has answered it with a 4xx; it still gets its record.
            let kind = if e.is_parse_too_large() {
                Kind::HeaderLimit
            } else {
                Kind::Malformed
            };
            record_malformed(&ctx, kind, &e.to_string()).await;
        } else {
            tracing::debug!(agent = %ctx.actor.agent.chain_display(), "http connection ended: {e}");
        }
    }
}

/// The connection's request handler, and a receiver that turns true once
/// its first request has arrived.
fn service(ctx: &Arc<HttpCtx>) -> (Handler, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    (
        Handler {
            ctx: ctx.clone(),
            first: Arc::new(tx),
        },
        rx,
    )
}

/// How long a connection accepted just before a drain gets to send its
/// first request: hyper closes a connection that has not sent one as
/// idle, and the agent has usually written it already.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);

/// Serves `conn` to its end; once the daemon drains (stops or hands over
/// to an upgraded binary), the request in progress is answered and the
/// connection closed rather than kept alive for another. An HTTP/2
/// client gets GOAWAY and retries on a new connection.
async fn until_drained<C: Future>(
    ctx: &HttpCtx,
    mut first: watch::Receiver<bool>,
    conn: C,
    graceful: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        out = conn.as_mut() => return out,
        _ = ctx.env.conns.draining() => {}
    }
    let arrived = tokio::time::timeout(FIRST_REQUEST_GRACE, first.wait_for(|started| *started));
    tokio::select! {
        out = conn.as_mut() => return out,
        _ = arrived => {}
    }
    graceful(conn.as_mut());
    conn.await
}

/// Hands each request to the pipeline with the connection's context.
#[derive(Clone)]
struct Handler {
    ctx: Arc<HttpCtx>,
    first: Arc<watch::Sender<bool>>,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let ctx = self.ctx.clone();
        self.first.send_replace(true);
        Box::pin(async move { Ok(pipeline::handle(ctx, req).await) })
    }
}

/// Records and answers a head the gate refused, then closes.
async fn refuse_head<IO: AsyncWrite + Unpin>(ctx: &HttpCtx, head: RefusedHead<IO>) {
    let RefusedHead { mut io, problem } = head;
    let kind = if problem.is_smuggling() {
        Kind::Smuggling
    } else if problem.is_too_large() {
        Kind::HeaderLimit
    } else {
        Kind::Malformed
    };
    let refusal = record_malformed(ctx, kind, &problem.to_string()).await;
    let params = Map::new();
    let bytes = answer::http1_bytes(&refusal, "http.malformed", &params);
    if let Err(e) = io.write_all(&bytes).await {
        tracing::debug!("answering a refused head: {e}");
    }
    if let Err(e) = io.shutdown().await {
        tracing::debug!("closing after a refused head: {e}");
    }
}

/// A request that never parsed as one: recorded as `http.malformed`.
async fn record_malformed(ctx: &HttpCtx, kind: Kind, why: &str) -> Refusal {
    let pinned = ctx.env.snapshots.pin();
    let refusal = Refusal::new(kind, why, Attribution::cordon(pinned.version().clone()));
    let params = Map::new();
    let ask = Ask {
        kind: EventKind::Request,
        actor: &ctx.actor,
        connector: None,
        action: "http.malformed",
        params: &params,
        host: ctx.sni.as_deref(),
        http: None,
        started: Instant::now(),
    };
    record_refusal(&ctx.env.audit, &ask, None, refusal).await
}
