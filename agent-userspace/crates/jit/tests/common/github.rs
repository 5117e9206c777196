//! A local HTTPS stand-in for GitHub's App endpoints that checks what
//! GitHub checks: the app JWT's RS256 signature against the app's public
//! key, its issuer and lifetime (at most ten minutes), the installation,
//! and that a token asks for no more than the installation grants. Tokens
//! it issues work on `GET /repos/{owner}/{repo}` only within their scope
//! and until revoked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cordon_tls::testing::TestCa;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

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

#[derive(Default)]
pub struct Ledger {
    pub tokens: BTreeMap<String, Issued>,
    /// JWTs refused, with why.
    pub refused: Vec<String>,
    /// Seconds the server's clock is ahead of the system's (to let an
    /// hour pass in a test for both sides).
    pub clock_offset_secs: i64,
}

pub struct FakeGithub {
    pub addr: SocketAddr,
    pub ca: TestCa,
    pub ledger: Arc<Mutex<Ledger>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    /// Serves HTTPS for `localhost` with a certificate from a fresh CA;
    /// `public_key_der` is the app's RSA public key (PKCS#1 DER).
    pub async fn start(public_key_der: Vec<u8>) -> FakeGithub {
        let ca = TestCa::new("jit test CA").expect("CA");
        let cert = ca.server_cert(&["localhost"]).expect("server cert");
        let config = cert.server_config(&[b"http/1.1"]).expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let key = Arc::new(public_key_der);
        let led = ledger.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, led, key) = (acceptor.clone(), led.clone(), key.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let (led, key) = (led.clone(), key.clone());
                        async move { Ok::<_, std::convert::Infallible>(serve(req, &led, &key).await) }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await
                    {
                        eprintln!("fake github connection: {e}");
                    }
                });
            }
        });
        FakeGithub {
            addr,
            ca,
            ledger,
            task,
        }
    }

    /// Base URL as a GitHub Enterprise Server's would be configured.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}/api/v3", self.addr.port())
    }

    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("ledger")
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

async fn serve(
    req: Request<Incoming>,
    ledger: &Mutex<Ledger>,
    key: &[u8],
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let token = bearer(&req);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(token) = token else {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication"}),
        );
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::POST, ["api", "v3", "app", "installations", id, "access_tokens"]) => {
            let offset = ledger.lock().expect("ledger").clock_offset_secs;
            if let Err(why) = check_jwt(&token, key, offset) {
                ledger.lock().expect("ledger").refused.push(why.clone());
                return answer(StatusCode::UNAUTHORIZED, json!({"message": why}));
            }
            if *id != INSTALLATION_ID.to_string() {
                return answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            mint(&body, ledger)
        }
        (Method::DELETE, ["api", "v3", "installation", "token"]) => {
            let mut l = ledger.lock().expect("ledger");
            match l.tokens.get_mut(&token) {
                Some(t) if !t.revoked => {
                    t.revoked = true;
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Full::new(Bytes::new()))
                        .expect("response")
                }
                _ => answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Bad credentials"}),
                ),
            }
        }
        (Method::GET, ["api", "v3", "repos", owner, repo]) => {
            let l = ledger.lock().expect("ledger");
            match l.tokens.get(&token) {
                Some(t) if !t.revoked => {
                    if *owner == OWNER && t.repositories.iter().any(|r| r == repo) {
                        answer(
                            StatusCode::OK,
                            json!({"full_name": format!("{owner}/{repo}")}),
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

fn check_jwt(jwt: &str, key: &[u8], clock_offset: i64) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "A JSON web token could not be decoded".to_string())?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        + clock_offset;
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
    let mut l = ledger.lock().expect("ledger");
    let token = format!("ghs_test{:032}", l.tokens.len() + 1);
    l.tokens.insert(
        token.clone(),
        Issued {
            repositories: repositories.clone(),
            permissions: permissions.clone(),
            revoked: false,
        },
    );
    let expires = chrono::Utc::now()
        + chrono::Duration::seconds(l.clock_offset_secs)
        + chrono::Duration::hours(1);
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
