//! The console's HTTP server: one task per connection on the daemon's
//! runtime. Each request passes the guards (`guard.rs`) in order — Host,
//! then Origin and CSRF for changes, then the session — before a handler
//! runs. Agents never get here: their connects are redirected to the proxy,
//! which refuses and records any attempt on the console port
//! (`proxy/conn.rs`).
use std::{sync::Arc, time::Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{
    actions, audit_feed,
    guard::{self, Facts, Refusal},
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

struct Console {
    d: Shared,
    sessions: Sessions,
    hosts: Vec<String>,
}

/// Binds `[console] listen` (nothing when unset) and serves it. A
/// configured address that cannot be bound stops the start.
pub fn spawn(d: &Shared) -> anyhow::Result<()> {
    let Some(addr) = d.cfg.console else {
        return Ok(());
    };
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
        sessions: Sessions::default(),
        hosts: guard::allowed_hosts(bound),
    });
    d.console_addr
        .set(bound)
        .map_err(|_| anyhow::anyhow!("the console was started twice"))?;
    tokio::spawn(accept_loop(console, listener));
    Ok(())
}

async fn accept_loop(c: Arc<Console>, listener: tokio::net::TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("console accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let c = c.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let c = c.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&c, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("console connection: {e}");
            }
        });
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
    if let Err(r) = guard::check_host(&facts, &c.hosts) {
        return refuse(&r);
    }
    let Some(route) = Route::parse(req.method().as_str(), req.uri().path()) else {
        return respond::error(404, "no such page");
    };
    if route == Route::Login {
        if let Err(r) = guard::check_origin(&facts) {
            return refuse(&r);
        }
        return login(c, req).await;
    }
    if !route.needs_session() {
        return match route {
            Route::Asset(a) => asset(a),
            _ => respond::error(404, "no such page"),
        };
    }
    let stored = match token::load(&c.d.cfg.paths.state_dir) {
        Ok(h) => h,
        Err(e) => return respond::error(401, &e.to_string()),
    };
    let id = match guard::session_id(&facts) {
        Ok(id) => id.to_string(),
        Err(r) => return refuse(&r),
    };
    let Some(session) = c.sessions.get(&id, &stored, Instant::now()) else {
        return refuse(&Refusal::NoSession);
    };
    if route.changes_state()
        && let Err(r) = guard::check_csrf(&facts, &session.csrf)
    {
        tracing::warn!(op = route.name(), "console: refused a change ({r})");
        return refuse(&r);
    }
    let query = req.uri().query().unwrap_or("").to_string();
    match route {
        Route::Session => respond::json(200, &json!({"csrf": session.csrf, "who": session.label})),
        Route::Logout => {
            c.sessions.close(&id);
            respond::set_cookie(respond::json(200, &json!({})), &guard::clear_cookie())
        }
        Route::AuditStream => {
            match audit_feed::open(&c.d, audit_feed::Wanted::from_query(&query)) {
                Ok(body) => respond::with(200, "text/event-stream", body),
                Err(e) => respond::error(400, &e),
            }
        }
        r if r.changes_state() => match read_json(req).await {
            Ok(body) => act(c, r, &session.label, &body).await,
            Err(e) => respond::error(400, &e),
        },
        r => read_view(c, r, &query).await,
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

async fn login(c: &Console, req: Request<Incoming>) -> Response<Body> {
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
    let (id, session) = c.sessions.open(stored, Instant::now());
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
