//! The console's HTTP server: one task per connection on the daemon's
//! runtime. Each request passes the guards (`guard.rs`) in order — Host,
//! then Origin and CSRF for changes, then the session (or, behind a
//! reverse proxy, the user the proxy names) — before a handler runs.
//! Agents never get here: their TCP connects are redirected to the proxy,
//! which refuses and records any attempt on the console port
//! (`proxy/conn.rs`); a unix-socket console refuses peers in agent cgroups
//! (`listen.rs`).
use std::{sync::Arc, time::Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{
    actions, audit_feed,
    config::ConsoleConfig,
    guard::{self, Facts, Refusal, Site},
    listen,
    proxy_auth::ProxyAuth,
    respond::{self, Body},
    routes::{Asset, Route},
    session::Sessions,
    token, views,
};
use crate::daemon::Shared;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
/// Form bodies are small; anything bigger is not the console's page.
const MAX_BODY: usize = 16 * 1024;

/// How operators prove who they are.
enum Auth {
    /// A login with the token from `cordon console token`, then a session.
    Token(Sessions),
    /// The reverse proxy in front of the socket authenticated them.
    Proxy(ProxyAuth),
}

impl Auth {
    fn name(&self) -> &'static str {
        match self {
            Auth::Token(_) => "token",
            Auth::Proxy(_) => "proxy",
        }
    }
}

struct Console {
    d: Shared,
    auth: Auth,
    site: Site,
}

/// Who a request is from, once the guards let it through.
struct Caller {
    label: String,
    csrf: String,
    /// The session's id, for logout (token logins only).
    session: Option<String>,
}

/// Serves `[console]` (nothing when unset). A configured address or socket
/// that cannot be bound stops the start.
pub fn spawn(d: &Shared) -> anyhow::Result<()> {
    match d.cfg.console.clone() {
        None => Ok(()),
        Some(ConsoleConfig::Tcp(addr)) => {
            let std = std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding the console on {addr}"))?;
            std.set_nonblocking(true)?;
            let bound = std.local_addr()?;
            let listener = tokio::net::TcpListener::from_std(std)?;
            if token::load(&d.cfg.paths.state_dir).is_err() {
                tracing::warn!("console: no login token yet; run `cordon console token`");
            }
            tracing::info!(addr = %bound, "serving the web console");
            let console = Arc::new(Console {
                d: d.clone(),
                auth: Auth::Token(Sessions::default()),
                site: Site::listening(bound),
            });
            d.console_addr
                .set(bound)
                .map_err(|_| anyhow::anyhow!("the console was started twice"))?;
            tokio::spawn(accept_tcp(console, listener));
            Ok(())
        }
        Some(ConsoleConfig::Socket(s)) => {
            let std = listen::bind_unix(&s.path, s.group.as_deref())?;
            let listener = tokio::net::UnixListener::from_std(std)?;
            tracing::info!(
                socket = %s.path.display(),
                origin = %s.public.origin,
                "serving the web console to a reverse proxy"
            );
            let console = Arc::new(Console {
                d: d.clone(),
                auth: Auth::Proxy(ProxyAuth::new(s.user_header.clone())),
                site: Site::public(&s.public),
            });
            tokio::spawn(accept_unix(console, listener));
            Ok(())
        }
    }
}

/// What `cordon status` names: the TCP address, or `unix:PATH`.
pub fn status_name(d: &Shared) -> Option<String> {
    match &d.cfg.console {
        Some(ConsoleConfig::Socket(s)) => Some(format!("unix:{}", s.path.display())),
        _ => d.console_addr.get().map(|a| a.to_string()),
    }
}

fn serve_connection<IO>(c: Arc<Console>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let c = c.clone();
            async move { Ok::<_, std::convert::Infallible>(answer(&c, req).await) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .await
        {
            tracing::debug!("console connection: {e}");
        }
    });
}

async fn accept_tcp(c: Arc<Console>, listener: tokio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => serve_connection(c.clone(), stream),
            Err(e) => {
                tracing::warn!("console accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_unix(c: Arc<Console>, listener: tokio::net::UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let c = c.clone();
                tokio::spawn(async move {
                    if listen::peer_allowed(&c.d, &stream).await {
                        serve_connection(c, stream);
                    }
                });
            }
            Err(e) => {
                tracing::warn!("console accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn refuse(r: &Refusal) -> Response<Body> {
    respond::error(r.status(), &r.to_string())
}

async fn answer(c: &Console, req: Request<Incoming>) -> Response<Body> {
    let facts = Facts {
        host: header(&req, "host"),
        origin: header(&req, "origin"),
        cookie: header(&req, "cookie"),
        csrf: header(&req, guard::CSRF_HEADER),
    };
    if let Err(r) = guard::check_host(&facts, &c.site.hosts) {
        return refuse(&r);
    }
    let Some(route) = Route::parse(req.method().as_str(), req.uri().path()) else {
        return respond::error(404, "no such page");
    };
    if route == Route::Login {
        if let Err(r) = guard::check_origin(&facts, &c.site) {
            return refuse(&r);
        }
        return match &c.auth {
            Auth::Token(sessions) => login(c, sessions, req).await,
            Auth::Proxy(_) => respond::error(
                400,
                "no login here: the reverse proxy in front of the console authenticates",
            ),
        };
    }
    if !route.needs_session() {
        return match route {
            Route::Asset(a) => asset(a),
            _ => respond::error(404, "no such page"),
        };
    }
    let who = match identify(c, &req, &facts) {
        Ok(w) => w,
        Err(Refusal::NoSession) => {
            return respond::json(
                401,
                &json!({"error": Refusal::NoSession.to_string(), "login": c.auth.name()}),
            );
        }
        Err(r) => return refuse(&r),
    };
    if route.changes_state()
        && let Err(r) = guard::check_csrf(&facts, &c.site, &who.csrf)
    {
        tracing::warn!(op = route.name(), by = %who.label, "console: refused a change ({r})");
        return refuse(&r);
    }
    let query = req.uri().query().unwrap_or("").to_string();
    match route {
        Route::Session => respond::json(
            200,
            &json!({"csrf": who.csrf, "who": who.label, "login": c.auth.name()}),
        ),
        Route::Logout => {
            if let (Auth::Token(sessions), Some(id)) = (&c.auth, &who.session) {
                sessions.close(id);
            }
            respond::set_cookie(respond::json(200, &json!({})), &guard::clear_cookie())
        }
        Route::AuditStream => {
            match audit_feed::open(&c.d, audit_feed::Wanted::from_query(&query)) {
                Ok(body) => respond::with(200, "text/event-stream", body),
                Err(e) => respond::error(400, &e),
            }
        }
        r if r.changes_state() => match read_json(req).await {
            Ok(body) => act(c, r, &who.label, &body).await,
            Err(e) => respond::error(400, &e),
        },
        r => read_view(c, r, &query).await,
    }
}

/// The logged-in session (token mode) or the user the proxy names.
fn identify(c: &Console, req: &Request<Incoming>, facts: &Facts<'_>) -> Result<Caller, Refusal> {
    match &c.auth {
        Auth::Proxy(p) => {
            let user = p.user_header.as_deref().and_then(|h| header(req, h));
            let id = p.identify(user)?;
            Ok(Caller {
                label: id.label,
                csrf: id.csrf,
                session: None,
            })
        }
        Auth::Token(sessions) => {
            let stored = token::load(&c.d.cfg.paths.state_dir).map_err(|e| {
                tracing::warn!("console: {e}");
                Refusal::NoSession
            })?;
            let id = guard::session_id(facts)?.to_string();
            let s = sessions
                .get(&id, &stored, Instant::now())
                .ok_or(Refusal::NoSession)?;
            Ok(Caller {
                label: s.label,
                csrf: s.csrf,
                session: Some(id),
            })
        }
    }
}

fn asset(a: Asset) -> Response<Body> {
    match a {
        Asset::Index => respond::with(200, "text/html; charset=utf-8", respond::full(INDEX)),
        Asset::Script => {
            respond::with(200, "text/javascript; charset=utf-8", respond::full(SCRIPT))
        }
        Asset::Style => respond::with(200, "text/css; charset=utf-8", respond::full(STYLE)),
        Asset::Icon => respond::with(204, "image/x-icon", respond::full(Bytes::new())),
    }
}

async fn read_json(req: Request<Incoming>) -> Result<Value, String> {
    let bytes: Bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the request: {e}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

async fn login(c: &Console, sessions: &Sessions, req: Request<Incoming>) -> Response<Body> {
    let body = match read_json(req).await {
        Ok(b) => b,
        Err(e) => return respond::error(400, &e),
    };
    let presented = body.get("token").and_then(Value::as_str).unwrap_or("");
    let stored = match token::load(&c.d.cfg.paths.state_dir) {
        Ok(h) => h,
        Err(e) => return respond::error(401, &e.to_string()),
    };
    if !token::matches(&stored, presented) {
        tracing::warn!("console: a login with a wrong token was refused");
        // Slows guessing; the token's length is what makes it hopeless.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return respond::error(401, "wrong token");
    }
    let (id, session) = sessions.open(stored, Instant::now());
    tracing::info!(session = %session.label, "console: logged in");
    let ok = respond::json(200, &json!({"csrf": session.csrf, "who": session.label}));
    respond::set_cookie(ok, &guard::set_cookie(&id))
}

async fn act(c: &Console, route: Route, who: &str, body: &Value) -> Response<Body> {
    let req = match actions::to_request(route, body) {
        Ok(r) => r,
        Err(e) => return respond::error(400, &e),
    };
    let reply = crate::control::ops::operator_as(&c.d, who, req).await;
    tracing::info!(op = route.name(), ok = reply.ok, by = who, "console action");
    if reply.ok {
        respond::json(200, &reply.body)
    } else {
        respond::error(409, reply.error.as_deref().unwrap_or("refused"))
    }
}

fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn read_view(c: &Console, route: Route, query: &str) -> Response<Body> {
    let d = &c.d;
    let result = match route {
        Route::Agents => views::agents(d).await,
        Route::Approvals => Ok(views::approvals(d)),
        Route::Grants => Ok(views::grants(d)),
        Route::Vault => views::vault(d).await,
        Route::Suggest => views::suggest(d, query_value(query, "agent").unwrap_or_default()).await,
        Route::Policy => match query_value(query, "at").filter(|s| !s.is_empty()) {
            None => views::policy(d, None).await,
            Some(t) => match crate::control::audit_read::parse_time("at", &t) {
                Ok(at) => views::policy(d, Some(at)).await,
                Err(e) => Err(views::ViewError::BadRequest(e)),
            },
        },
        other => Err(views::ViewError::BadRequest(format!(
            "{} is not a view",
            other.name()
        ))),
    };
    match result {
        Ok(v) => respond::json(200, &v),
        Err(e) => respond::error(e.status(), &e.to_string()),
    }
}
