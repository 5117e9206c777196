//! A git smart-HTTP upstream over HTTPS: hyper in front of `git-http-backend` (CGI), serving
//! bare repositories from a temp dir, with push enabled.

mod cgi;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use cgi::Cgi;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::error::{Error, IoContext, Result};
use crate::http::{Recorded, serve};
use crate::netns::NetNs;
use crate::process::run_checked;
use crate::server_thread::{ServerThread, bind_all_tcp};
use crate::tls::{SERVER_ALPN, TestCa};

/// Env var overriding where `git-http-backend` lives.
pub const GIT_HTTP_BACKEND_ENV: &str = "CORDON_GIT_HTTP_BACKEND";
/// The user git-http-backend is told authenticated the request (it requires one for push).
pub const GIT_REMOTE_USER: &str = "cordon-e2e";
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
        Self::start_on(
            ns,
            ca,
            names,
            &[(ns.v4_at(1).into(), 443), (ns.v6_at(1).into(), 443)],
        )
    }

    pub fn start_on(
        ns: &NetNs,
        ca: &TestCa,
        names: &[&str],
        addrs: &[(IpAddr, u16)],
    ) -> Result<Self> {
        let backend = find_backend()?;
        let root = tempfile::Builder::new()
            .prefix("cordon-e2e-git-")
            .tempdir()
            .ctx(|| "create git root".into())?;
        let tls = TlsAcceptor::from(ca.server_config(names, SERVER_ALPN)?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let cgi = Arc::new(Cgi {
            backend,
            root: root.path().to_owned(),
            requests: requests.clone(),
        });
        let (thread, addrs) = ServerThread::spawn(
            &format!("git-{}", ns.name()),
            Some(ns.path()),
            bind_all_tcp(binds),
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
        Ok(Self {
            root,
            addrs,
            requests,
            _thread: thread,
        })
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
        std::fs::write(&readme, format!("{name}\n"))
            .ctx(|| format!("write {}", readme.display()))?;
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
            hermetic_git().args([
                "-C",
                path_str(&bare)?,
                "rev-parse",
                "--verify",
                "-q",
                reference,
            ]),
            GIT_TIMEOUT,
        )?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// Every request the server answered, in arrival order (bodies included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
    p.to_str().ok_or_else(|| Error::Path {
        path: p.to_owned(),
        reason: "not UTF-8".into(),
    })
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
    Err(Error::Setup(format!(
        "git-http-backend not found; set {GIT_HTTP_BACKEND_ENV}"
    )))
}
