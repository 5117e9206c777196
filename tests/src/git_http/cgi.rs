//! The CGI bridge: one HTTP request in, `git-http-backend` run with the CGI environment,
//! its output parsed back into a response.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;

use super::GIT_REMOTE_USER;
use crate::error::{Error, IoContext, Result};
use crate::http::{ConnInfo, Recorded, Reply, to_response};

const MAX_PUSH: usize = 64 << 20;
const CGI_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct Cgi {
    pub(super) backend: PathBuf,
    pub(super) root: PathBuf,
    pub(super) requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Cgi {
    pub(super) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnInfo>,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let Ok(body) = Limited::new(body, MAX_PUSH)
            .collect()
            .await
            .map(|b| b.to_bytes())
        else {
            return to_response(Reply::status(413));
        };
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
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
        for (var, name) in [
            ("CONTENT_TYPE", "content-type"),
            ("HTTP_CONTENT_ENCODING", "content-encoding"),
            ("GIT_PROTOCOL", "git-protocol"),
        ] {
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
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(rec);
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
        .map_err(|_| Error::Timeout {
            what: "git-http-backend".into(),
            after: CGI_TIMEOUT,
        })?
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
    let (head, body) =
        split_head(out).ok_or_else(|| Error::Setup("CGI output has no header block".into()))?;
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
            reply
                .headers
                .push((name.trim().to_owned(), value.to_owned()));
        }
    }
    reply.body = body.to_vec();
    Ok(reply)
}

fn split_head(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (i, sep) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&out[..i], &out[i + sep..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_status_headers_and_body_are_split() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope\n\nx")
            .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            vec![("Content-Type".to_owned(), "text/plain".to_owned())]
        );
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
