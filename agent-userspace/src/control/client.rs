//! Client side of the control socket, used by every CLI command that talks
//! to a running daemon.
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use super::proto::{Reply, Request};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cordon daemon is not running: no control socket at {0}")]
    NoSocket(PathBuf),
    #[error(
        "stale control socket at {0}: no daemon is listening (start `cordon daemon` or run `cordon cleanup`)"
    )]
    Stale(PathBuf),
    #[error(
        "permission denied on control socket {0}: run as root or as a member of the cordon group"
    )]
    Denied(PathBuf),
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("daemon sent an unreadable reply: {0}")]
    BadReply(String),
    #[error("{0}")]
    Refused(String),
}

/// Sends one request and waits for its reply.
pub fn call(
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, ClientError> {
    let mut stream = connect(socket)?;
    let io = |source| ClientError::Io {
        path: socket.into(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::BadReply(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut buf = String::new();
    reader.read_line(&mut buf).map_err(io)?;
    let reply: Reply =
        serde_json::from_str(&buf).map_err(|e| ClientError::BadReply(e.to_string()))?;
    if reply.ok {
        Ok(reply.body)
    } else {
        Err(ClientError::Refused(
            reply.error.unwrap_or_else(|| "request refused".into()),
        ))
    }
}

pub fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ClientError::NoSocket(socket.into()),
        std::io::ErrorKind::ConnectionRefused => ClientError::Stale(socket.into()),
        std::io::ErrorKind::PermissionDenied => ClientError::Denied(socket.into()),
        _ => ClientError::Io {
            path: socket.into(),
            source: e,
        },
    })
}
