//! A local HTTPS GitHub for the App flow, inside a test namespace, checking
//! what GitHub checks (ported from cordon-jit's tests): the app JWT's RS256
//! signature against the app's public key, its issuer and lifetime (at most
//! ten minutes), the installation, and that a token asks for no more than
//! the installation grants. Tokens it mints serve `GET /repos/{owner}/{repo}`
//! only within their scope and until revoked (`DELETE /installation/token`,
//! which it records). Paths are served with and without GHES's `/api/v3`.
//!
//! It also records every `Authorization` it was sent on `/repos/`, so a
//! test can show the upstream got the minted token and never a placeholder.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::error::Result;
use crate::http::serve;
use crate::netns::NetNs;
use crate::server_thread::{ServerThread, bind_all_tcp};
use crate::tls::TestCa;

pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 777;
pub const OWNER: &str = "acme";
/// Repositories of the installation.
pub const REPOS: [&str; 3] = ["api", "web", "infra"];

#[derive(Debug, Clone)]
pub struct Issued {
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub revoked: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub tokens: BTreeMap<String, Issued>,
    /// JWTs refused, with why.
    pub refused: Vec<String>,
    /// Tokens revoked by `DELETE /installation/token`, in order.
    pub deletes: Vec<String>,
    /// The `Authorization` of every `/repos/` request, as sent.
    pub repo_auth: Vec<String>,
}

/// The local GitHub; stopped on drop.
#[derive(Debug)]
pub struct FakeGithub {
    pub addr: SocketAddr,
    ledger: Arc<Mutex<Ledger>>,
    _thread: ServerThread,
}

/// The installation's own grant; asking for more is refused (422).
fn installation_grant() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("contents", "write"),
        ("pull_requests", "write"),
        ("metadata", "read"),
    ])
}

fn level(l: &str) -> u8 {
    match l {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => u8::MAX,
    }
}

impl FakeGithub {
    /// HTTPS on `ip:443` in `ns`, certificate for `names` (and `ip`, so the
    /// daemon can be pointed at it by address); `public_key_der` is the
    /// app's RSA public key (PKCS#1 DER).
    pub fn start(
        ns: &NetNs,
        ca: &TestCa,
        ip: IpAddr,
        names: &[&str],
        public_key_der: Vec<u8>,
    ) -> Result<FakeGithub> {
        let ip_name = ip.to_string();
        let mut all: Vec<&str> = names.to_vec();
        all.push(&ip_name);
        let acceptor = TlsAcceptor::from(ca.server_config(&all, &[b"http/1.1"])?);
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let key = Arc::new(public_key_der);
        let led = ledger.clone();
        let (thread, bound) = ServerThread::spawn(
            &format!("github-{}", ns.name()),
            Some(ns.path()),
            bind_all_tcp(vec![SocketAddr::new(ip, 443)]),
            move |listeners| async move {
                for listener in listeners {
                    let (led, key, tls) = (led.clone(), key.clone(), acceptor.clone());
                    tokio::spawn(serve::accept_forever(listener, move |stream, peer| {
                        let (led, key) = (led.clone(), key.clone());
                        let handler = move |req, _info| {
                            let (led, key) = (led.clone(), key.clone());
                            async move { handle(req, &led, &key).await }
                        };
                        serve::serve_conn(stream, peer, Some(tls.clone()), handler)
                    }));
                }
                std::future::pending::<()>().await;
            },
        )?;
        Ok(FakeGithub {
            addr: bound[0],
            ledger,
            _thread: thread,
        })
    }

    /// The API base the daemon mints at (`[credentials] github_api`).
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr.ip())
    }

    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(
    req: Request<Incoming>,
    ledger: &Mutex<Ledger>,
    key: &[u8],
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let path = path.strip_prefix("/api/v3").unwrap_or(&path).to_string();
    let method = req.method().clone();
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return answer(StatusCode::BAD_REQUEST, json!({"message": e.to_string()})),
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.first() == Some(&"repos") {
        lock(ledger)
            .repo_auth
            .push(auth.clone().unwrap_or_default());
    }
    let Some(token) = auth
        .as_deref()
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("token "))
        })
        .map(str::to_string)
    else {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication"}),
        );
    };
    match (method, parts.as_slice()) {
        (Method::POST, ["app", "installations", id, "access_tokens"]) => {
            if let Err(why) = check_jwt(&token, key) {
                lock(ledger).refused.push(why.clone());
                return answer(StatusCode::UNAUTHORIZED, json!({"message": why}));
            }
            if *id != INSTALLATION_ID.to_string() {
                return answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            mint(&body, ledger)
        }
        (Method::DELETE, ["installation", "token"]) => {
            let mut l = lock(ledger);
            match l.tokens.get_mut(&token) {
                Some(t) if !t.revoked => {
                    t.revoked = true;
                    l.deletes.push(token);
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                }
                _ => answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Bad credentials"}),
                ),
            }
        }
        (Method::GET, ["repos", owner, repo]) => {
            let l = lock(ledger);
            match l.tokens.get(&token) {
                Some(t) if !t.revoked => {
                    if *owner == OWNER && t.repositories.iter().any(|r| r == repo) {
                        answer(
                            StatusCode::OK,
                            json!({"full_name": format!("{owner}/{repo}"), "private": true}),
                        )
                    } else {
                        answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
                    }
                }
                _ => answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Bad credentials"}),
                ),
            }
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

fn b64_json(part: &str) -> std::result::Result<Value, String> {
    let raw = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
    serde_json::from_slice(&raw).map_err(|e| e.to_string())
}

fn check_jwt(jwt: &str, key: &[u8]) -> std::result::Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let header = b64_json(h)?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "A JSON web token could not be decoded".to_string())?;
    let claims = b64_json(p)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    let (iat, exp) = (
        claims["iat"].as_i64().ok_or("no iat")?,
        claims["exp"].as_i64().ok_or("no exp")?,
    );
    let iss_matches =
        claims["iss"].as_str() == Some(APP_ID.to_string().as_str()) || claims["iss"] == APP_ID;
    if !iss_matches {
        return Err(format!("iss {} is not the app", claims["iss"]));
    }
    if exp - iat > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    if iat > now + 60 || exp <= now {
        return Err("'Issued at' or 'Expiration time' claim is not valid now".into());
    }
    Ok(())
}

fn mint(body: &[u8], ledger: &Mutex<Ledger>) -> Response<Full<Bytes>> {
    let req: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let repositories: Vec<String> = match req["repositories"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        None => REPOS.iter().map(|r| r.to_string()).collect(),
    };
    if let Some(bad) = repositories.iter().find(|r| !REPOS.contains(&r.as_str())) {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": format!("There is at least one repository that does not exist or is not accessible to the parent installation: {bad}")}),
        );
    }
    let grant = installation_grant();
    let permissions: BTreeMap<String, String> = match req["permissions"].as_object() {
        Some(p) => p
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
        None => grant
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    for (perm, lvl) in &permissions {
        let allowed = grant.get(perm.as_str()).map_or(0, |g| level(g));
        if level(lvl) > allowed {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("The permissions requested are not granted to this installation: {perm}")}),
            );
        }
    }
    let mut l = lock(ledger);
    // Random, so a test can look for any piece of it in what the agent saw.
    let token = format!("ghs_{}", crate::secrets::random_alnum(36));
    l.tokens.insert(
        token.clone(),
        Issued {
            repositories: repositories.clone(),
            permissions: permissions.clone(),
            revoked: false,
        },
    );
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    answer(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "permissions": permissions,
            "repository_selection": if req["repositories"].is_array() { "selected" } else { "all" },
            "repositories": repositories.iter().map(|r| json!({"full_name": format!("{OWNER}/{r}")})).collect::<Vec<_>>(),
        }),
    )
}

/// A fresh RSA app key: the `github-app` entry's PEM and the public key
/// the local GitHub verifies JWTs with.
pub fn app_key() -> Result<(String, Vec<u8>)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map_err(|e| crate::error::Error::Setup(format!("RSA key: {e}")))?;
    Ok((key.serialize_pem(), key.public_key_raw().to_vec()))
}

/// The `github-app` vault entry (stored form) for `pem`.
pub fn entry_json(pem: &str) -> String {
    json!({"app_id": APP_ID, "installation_id": INSTALLATION_ID, "private_key_pem": pem})
        .to_string()
}
