//! A real git smart-HTTP server for tests: a tiny HTTP/1.1 front (one request per connection)
//! that runs `git http-backend` as CGI, records every receive-pack body the real `git` client
//! sends, and can instead refuse a push with Cordon's report-status body.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Builds a refusal body from a recorded receive-pack request.
pub type Answer = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What the server does with a push.
#[derive(Clone)]
pub enum Mode {
    /// Hand it to git http-backend.
    Forward,
    /// Answer with this body (built from the recorded request) instead.
    Refuse(Answer),
}

pub struct GitServer {
    pub root: PathBuf,
    pub port: u16,
    pub pushes: Arc<Mutex<Vec<Vec<u8>>>>,
    pub mode: Arc<Mutex<Mode>>,
    /// Advertise receive-pack without `side-band-64k`, so the client does not ask for it.
    pub no_side_band: Arc<Mutex<bool>>,
}

/// Run git with a clean, fixed environment.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.version=0",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("HOME", dir)
        .output()
        .expect("git runs")
}

/// Run git and require success; return stdout.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl GitServer {
    /// A server for the bare repositories under `root`.
    pub fn start(root: &Path) -> GitServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = GitServer {
            root: root.to_path_buf(),
            port,
            pushes: Arc::new(Mutex::new(Vec::new())),
            mode: Arc::new(Mutex::new(Mode::Forward)),
            no_side_band: Arc::new(Mutex::new(false)),
        };
        let (root, pushes, mode, no_sb) = (
            server.root.clone(),
            Arc::clone(&server.pushes),
            Arc::clone(&server.mode),
            Arc::clone(&server.no_side_band),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (root, pushes, mode) = (root.clone(), Arc::clone(&pushes), Arc::clone(&mode));
                let no_sb = *no_sb.lock().unwrap();
                std::thread::spawn(move || serve(conn, &root, &pushes, &mode, no_sb));
            }
        });
        server
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The receive-pack bodies recorded since the last call.
    pub fn take_pushes(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.pushes.lock().unwrap())
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let (mut length, mut chunked, mut content_type) = (0usize, false, String::new());
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
            "content-type" => content_type = v.trim().to_string(),
            "content-encoding" => panic!("the test server does not decode {v}"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        path,
        query,
        content_type,
        body,
    })
}

fn serve(
    mut conn: TcpStream,
    root: &Path,
    pushes: &Mutex<Vec<Vec<u8>>>,
    mode: &Mutex<Mode>,
    no_side_band: bool,
) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let is_push = req.method == "POST" && req.path.ends_with("/git-receive-pack");
    if is_push {
        pushes.lock().unwrap().push(req.body.clone());
        let mode = mode.lock().unwrap().clone();
        if let Mode::Refuse(answer) = mode {
            let body = answer(&req.body);
            respond(
                &mut conn,
                "200 OK",
                &[(
                    "Content-Type",
                    cordon_connectors::git::RECEIVE_PACK_RESULT_CONTENT_TYPE,
                )],
                &body,
            );
            return;
        }
    }
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", &req.path)
        .env("QUERY_STRING", &req.query)
        .env("CONTENT_TYPE", &req.content_type)
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("REMOTE_USER", "test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("git http-backend runs");
    let mut stdin = child.stdin.take().unwrap();
    let body = req.body;
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&out.stdout[..split]).to_string();
    let mut status = "200 OK".to_string();
    let mut headers = Vec::new();
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("status") {
            status = v.trim().to_string();
        } else {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut body = out.stdout[split + 4..].to_vec();
    if no_side_band && req.method == "GET" && req.query == "service=git-receive-pack" {
        body = without_side_band(&body);
    }
    respond(&mut conn, &status, &hs, &body);
}

/// Re-frame an advertisement with ` side-band-64k` removed from its capabilities.
fn without_side_band(adv: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= adv.len() {
        let len =
            usize::from_str_radix(std::str::from_utf8(&adv[pos..pos + 4]).unwrap(), 16).unwrap();
        if len == 0 {
            out.extend_from_slice(b"0000");
            pos += 4;
            continue;
        }
        let line = String::from_utf8_lossy(&adv[pos + 4..pos + len]).replace(" side-band-64k", "");
        out.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
        out.extend_from_slice(line.as_bytes());
        pos += len;
    }
    out
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    // The client may have hung up already; the test then fails on what git printed.
    if let Err(e) = conn
        .write_all(out.as_bytes())
        .and_then(|()| conn.write_all(body))
    {
        eprintln!("test git server: writing the response: {e}");
    }
}
