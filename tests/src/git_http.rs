//! A git smart-HTTP upstream over HTTPS: hyper in front of `git-http-backend` (CGI), serving
//! bare repositories from a temp dir, with push enabled.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, IoContext, Result};
use crate::http::{ConnInfo, Recorded, Reply, serve, to_response};
use crate::netns::NetNs;
use crate::process::run_checked;
use crate::server_thread::{ServerThread, bind_tcp};
use crate::tls::{SERVER_ALPN, TestCa};

/// Env var overriding where `git-http-backend` lives.
pub const GIT_HTTP_BACKEND_ENV: &str = "CORDON_GIT_HTTP_BACKEND";
/// The user git-http-backend is told authenticated the request (it requires one for push).
pub const GIT_REMOTE_USER: &str = "cordon-e2e";
const MAX_PUSH: usize = 64 << 20;
const CGI_TIMEOUT: Duration = Duration::from_secs(60);
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct GitServer {
    root: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _thread: ServerThread,
}

impl GitServer {
    /// HTTPS on port 443 of the namespace's *second* addresses (`v4_at(1)`, `v6_at(1)`), so it
    /// can run beside an [`crate::HttpsServer`] on the primary ones.
    pub fn start(ns: &NetNs, ca: &TestCa, names: &[&str]) -> Result<Self> {
        Self::start_on(ns, ca, names, &[(ns.v4_at(1).into(), 443), (ns.v6_at(1).into(), 443)])
    }

    pub fn start_on(ns: &NetNs, ca: &TestCa, names: &[&str], addrs: &[(IpAddr, u16)]) -> Result<Self> {
        let backend = find_backend()?;
        let root = tempfile::Builder::new()
            .prefix("cordon-e2e-git-")
            .tempdir()
            .ctx(|| "create git root".into())?;
        let tls = TlsAcceptor::from(ca.server_config(names, SERVER_ALPN)?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let cgi = Arc::new(Cgi { backend, root: root.path().to_owned(), requests: requests.clone() });
        let (thread, addrs) = ServerThread::spawn(
            &format!("git-{}", ns.name()),
            Some(ns.path()),
            move || {
                let listeners = binds.iter().map(|&a| bind_tcp(a)).collect::<Result<Vec<_>>>()?;
                Ok((binds, listeners))
            },
            move |listeners| async move {
                for listener in listeners {
                    let (cgi, tls) = (cgi.clone(), tls.clone());
                    tokio::spawn(serve::accept_forever(listener, move |stream, peer| {
                        let cgi = cgi.clone();
                        let handler = move |req, info| cgi.clone().handle(req, info);
                        serve::serve_conn(stream, peer, Some(tls.clone()), handler)
                    }));
                }
                std::future::pending::<()>().await;
            },
        )?;
        Ok(Self { root, addrs, requests, _thread: thread })
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Create bare repository `<name>.git` with one commit on `main` (a README), push enabled.
    pub fn create_repo(&self, name: &str) -> Result<PathBuf> {
        let bare = self.repo_path(name);
        let work = tempfile::tempdir().ctx(|| "create seed worktree".into())?;
        git_ok(&["init", "--bare", "-q", "-b", "main", path_str(&bare)?])?;
        git_ok(&["-C", path_str(&bare)?, "config", "http.receivepack", "true"])?;
        let w = path_str(work.path())?;
        git_ok(&["init", "-q", "-b", "main", w])?;
        let readme = work.path().join("README");
        std::fs::write(&readme, format!("{name}\n")).ctx(|| format!("write {}", readme.display()))?;
        git_ok(&["-C", w, "add", "README"])?;
        git_ok(&["-C", w, "commit", "-q", "-m", "initial"])?;
        git_ok(&["-C", w, "push", "-q", path_str(&bare)?, "main"])?;
        Ok(bare)
    }

    /// Path of bare repository `<name>.git`.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("{name}.git"))
    }

    /// Commit id `reference` points at in repository `name`, `None` if it does not exist.
    pub fn rev(&self, name: &str, reference: &str) -> Result<Option<String>> {
        let bare = self.repo_path(name);
        let out = crate::process::run_with_timeout(
            hermetic_git().args(["-C", path_str(&bare)?, "rev-parse", "--verify", "-q", reference]),
            GIT_TIMEOUT,
        )?;
        Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// Every request the server answered, in arrival order (bodies included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A `git` command that ignores system and user configuration and has a fixed identity.
pub fn hermetic_git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Cordon E2E")
        .env("GIT_AUTHOR_EMAIL", "e2e@cordon.test")
        .env("GIT_COMMITTER_NAME", "Cordon E2E")
        .env("GIT_COMMITTER_EMAIL", "e2e@cordon.test");
    cmd
}

fn git_ok(args: &[&str]) -> Result<()> {
    run_checked(hermetic_git().args(args), GIT_TIMEOUT).map(drop)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Error::Path { path: p.to_owned(), reason: "not UTF-8".into() })
}

/// The backend matching the `git` on PATH if there is one, else Debian's.
fn find_backend() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(GIT_HTTP_BACKEND_ENV) {
        return Ok(PathBuf::from(p));
    }
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let candidates = exec_path
        .map(|d| d.join("git-http-backend"))
        .into_iter()
        .chain([PathBuf::from("/usr/lib/git-core/git-http-backend")]);
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(Error::Setup(format!("git-http-backend not found; set {GIT_HTTP_BACKEND_ENV}")))
}

#[derive(Debug)]
struct Cgi {
    backend: PathBuf,
    root: PathBuf,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Cgi {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let Ok(body) = Limited::new(body, MAX_PUSH).collect().await.map(|b| b.to_bytes()) else {
            return to_response(Reply::status(413));
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut cmd = tokio::process::Command::new(&self.backend);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", GIT_REMOTE_USER)
            .env("REMOTE_ADDR", conn.peer.ip().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (var, name) in [("CONTENT_TYPE", "content-type"), ("HTTP_CONTENT_ENCODING", "content-encoding"), ("GIT_PROTOCOL", "git-protocol")] {
            if let Some(v) = header(name) {
                cmd.env(var, v);
            }
        }
        let reply = run_cgi(cmd, body.clone()).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "git-http-backend failed");
            Reply::text(500, &e.to_string())
        });
        let rec = Recorded {
            conn: (*conn).clone(),
            version: format!("{:?}", parts.version),
            method: parts.method.to_string(),
            host: header("host").or_else(|| parts.uri.authority().map(|a| a.to_string())),
            path: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
            headers: parts.headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
            body: body.to_vec(),
        };
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(rec);
        to_response(reply)
    }
}

async fn run_cgi(mut cmd: tokio::process::Command, body: Bytes) -> Result<Reply> {
    let mut child = cmd.spawn().ctx(|| "spawn git-http-backend".into())?;
    if let Some(mut stdin) = child.stdin.take() {
        // Written concurrently with reading stdout so a large exchange cannot deadlock.
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
    }
    let out = tokio::time::timeout(CGI_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| Error::Timeout { what: "git-http-backend".into(), after: CGI_TIMEOUT })?
        .ctx(|| "wait for git-http-backend".into())?;
    if !out.status.success() && out.stdout.is_empty() {
        return Err(Error::Setup(format!(
            "git-http-backend exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse_cgi(&out.stdout)
}

/// CGI output: header lines, a blank line, the body. `Status:` sets the code (default 200).
fn parse_cgi(out: &[u8]) -> Result<Reply> {
    let (head, body) = split_head(out).ok_or_else(|| Error::Setup("CGI output has no header block".into()))?;
    let head = String::from_utf8_lossy(head);
    let mut reply = Reply::status(200);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Setup(format!("bad CGI header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok());
            reply.status = code.ok_or_else(|| Error::Setup(format!("bad CGI status {value:?}")))?;
        } else {
            reply.headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    reply.body = body.to_vec();
    Ok(reply)
}

fn split_head(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (i, sep) = match (crlf, lf) {
        (Some(a), Some(b)) => if a.0 <= b.0 { a } else { b },
        (a, b) => a.or(b)?,
    };
    Some((&out[..i], &out[i + sep..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_status_headers_and_body_are_split() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope\n\nx").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers, vec![("Content-Type".to_owned(), "text/plain".to_owned())]);
        assert_eq!(r.body, b"nope\n\nx");
    }

    #[test]
    fn cgi_without_status_is_200_and_lf_only_works() {
        let r = parse_cgi(b"Content-Type: application/x-git\n\nPACK").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"PACK"[..]));
    }

    #[test]
    fn cgi_output_without_blank_line_is_an_error() {
        assert!(parse_cgi(b"Content-Type: x").is_err());
    }
}
