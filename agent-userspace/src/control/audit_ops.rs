//! The audit trail over the control socket: `tail` (optionally following)
//! and `export` stream their lines (see `stream.rs`); `verify` is one reply.
//! Reading runs on blocking threads against the daemon's own database
//! handle (redb locks the file, so the CLI cannot open it meanwhile).
use std::{io::Write, sync::Arc, time::Duration};

use cordon_audit::{ExportFormat, Filter};
use redb::Database;
use serde_json::json;
use tokio::{io::AsyncWriteExt, net::unix::OwnedWriteHalf, sync::mpsc};

use super::{
    audit_read,
    proto::{Reply, Request},
    server::Caller,
    stream::Frame,
};
use crate::daemon::Shared;

/// A follower with nothing new gets a keepalive this often; a failed write
/// is how the daemon learns the client has gone.
const KEEPALIVE: Duration = Duration::from_secs(10);

pub fn is_stream(req: &Request) -> bool {
    matches!(req, Request::AuditTail { .. } | Request::AuditExport { .. })
}

/// The audit trail says what every agent did: operators (root, outside any
/// agent) only, like the other operator operations.
async fn gate(d: &Shared, caller: &Caller, req: &Request) -> Option<String> {
    if let Some(agent) = &caller.agent {
        super::ops::audit_refusal(d, caller, req.name(), agent).await;
        return Some(format!(
            "{} refused: the caller runs inside agent {} and agents may not operate Cordon",
            req.name(),
            agent.chain_display()
        ));
    }
    (caller.uid != 0).then(|| format!("{} refused: reading the audit trail needs root", req.name()))
}

async fn send(w: &mut OwnedWriteHalf, f: &Frame) -> std::io::Result<()> {
    w.write_all(&f.to_line()).await
}

/// Serves a streaming request to its end frame (or until the client goes).
pub async fn stream(d: &Shared, caller: &Caller, req: Request, w: &mut OwnedWriteHalf) {
    if let Some(refusal) = gate(d, caller, &req).await {
        let _ = send(w, &Frame::failed(refusal)).await;
        return;
    }
    let end = match req {
        Request::AuditTail {
            agent,
            decision,
            lines,
            follow,
            json,
        } => match audit_read::filter(agent, decision.as_deref()) {
            Ok(f) => tail(d, f, lines, follow, json, w).await,
            Err(e) => Err(e),
        },
        Request::AuditExport {
            since,
            until,
            format,
        } => export(d, since, until, &format, w).await,
        other => Err(format!("{} is not a streaming operation", other.name())),
    };
    let frame = match end {
        Ok(body) => Frame::done(body),
        Err(e) => Frame::failed(e),
    };
    let _ = send(w, &frame).await;
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, cordon_audit::AuditError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the audit log: {e}"))
}

/// Sends `recs` as `tail` prints them, outcomes (read up to `upto`) inline.
async fn send_records(
    d: &Shared,
    w: &mut OwnedWriteHalf,
    recs: Vec<cordon_audit::AuditRecord>,
    upto: u64,
    json: bool,
) -> Result<(), String> {
    let db = d.audit.database().clone();
    let lines = blocking(move || {
        let outcomes = audit_read::outcomes_for(&db, &recs, upto)?;
        audit_read::lines(&recs, &outcomes, json)
    })
    .await?;
    for line in lines {
        send(w, &Frame::line(line))
            .await
            .map_err(|e| format!("client gone: {e}"))?;
    }
    Ok(())
}

async fn tail(
    d: &Shared,
    filter: Filter,
    lines: usize,
    follow: bool,
    json: bool,
    w: &mut OwnedWriteHalf,
) -> Result<serde_json::Value, String> {
    // Subscribed before reading, so nothing committed in between is missed.
    let mut committed = d.audit.subscribe();
    d.audit.settled().await;
    let db = d.audit.database().clone();
    let f = filter.clone();
    let (recs, mut seen) = blocking(move || audit_read::tail(&db, &f, lines)).await?;
    send_records(d, w, recs, seen, json).await?;
    if !follow {
        return Ok(json!({ "head": seen }));
    }
    loop {
        tokio::select! {
            changed = committed.changed() => {
                if changed.is_err() {
                    return Err("the audit log closed (daemon stopping)".into());
                }
                let upto = *committed.borrow_and_update();
                if upto <= seen {
                    continue;
                }
                let (db, f) = (d.audit.database().clone(), filter.clone());
                let recs = blocking(move || audit_read::committed_between(&db, seen, upto, &f)).await?;
                send_records(d, w, recs, upto, json).await?;
                seen = upto;
            }
            _ = tokio::time::sleep(KEEPALIVE) => {
                send(w, &Frame::keepalive()).await.map_err(|e| format!("client gone: {e}"))?;
            }
        }
    }
}

/// Hands each exported line to the async side; a full channel holds the
/// export back, a closed one (client gone) stops it.
struct LineSender {
    tx: mpsc::Sender<String>,
    partial: Vec<u8>,
}

impl Write for LineSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let rest = self.partial.split_off(i + 1);
            let mut line = std::mem::replace(&mut self.partial, rest);
            line.pop();
            let text = String::from_utf8(line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.tx
                .blocking_send(text)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn export(
    d: &Shared,
    since: Option<String>,
    until: Option<String>,
    format: &str,
    w: &mut OwnedWriteHalf,
) -> Result<serde_json::Value, String> {
    let since = since
        .map(|s| audit_read::parse_time("--since", &s))
        .transpose()?;
    let until = until
        .map(|s| audit_read::parse_time("--until", &s))
        .transpose()?;
    let format: ExportFormat = format.parse().map_err(|e| format!("--format: {e}"))?;
    let (tx, mut rx) = mpsc::channel(256);
    d.audit.settled().await;
    let db: Arc<Database> = d.audit.database().clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut out = LineSender {
            tx,
            partial: Vec::new(),
        };
        cordon_audit::export(&db, since, until, format, &mut out)
    });
    while let Some(line) = rx.recv().await {
        if send(w, &Frame::line(line)).await.is_err() {
            // Dropping the receiver makes the exporter's next send fail.
            drop(rx);
            let _ = job.await;
            return Err("client gone".into());
        }
    }
    let summary = job
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("export failed: {e}"))?;
    Ok(json!({
        "records": summary.records,
        "first_seq": summary.first_seq,
        "last_seq": summary.last_seq,
    }))
}

/// `cordon audit verify` while the daemon runs.
pub async fn verify(d: &Shared) -> Reply {
    d.audit.settled().await;
    let db = d.audit.database().clone();
    match blocking(move || cordon_audit::verify(&db)).await {
        Ok(report) => Reply::ok(report),
        Err(e) => Reply::err(e),
    }
}
