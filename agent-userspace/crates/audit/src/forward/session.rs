//! The forwarding loop: connect, send every committed record after the cursor in batches,
//! move the cursor as the collector confirms them, and on any failure start over from the
//! cursor after a backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};

use super::acks::AckTracker;
use super::conn::{Conn, Io};
use super::cursor::CursorFile;
use super::syslog::{RecordHead, frame};
use super::{ForwardConfig, ForwardError, ForwardStats};
use crate::error::AuditError;
use crate::export::write_line;
use crate::log::AuditLog;
use crate::store::{Stored, stored_from};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often acknowledgements are checked while some are outstanding.
const ACK_POLL: Duration = Duration::from_millis(50);
/// The cursor file is rewritten at most this often (a stale cursor only resends).
const STORE_EVERY: Duration = Duration::from_millis(250);

pub(super) async fn run(
    log: AuditLog,
    cfg: ForwardConfig,
    cursor: CursorFile,
    mut delivered: u64,
    stats: Arc<ForwardStats>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut attempt = 0u64;
    loop {
        if attempt > 0 {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        attempt += 1;
        let before = delivered;
        let err = session(&log, &cfg, &cursor, &mut delivered, &stats).await;
        stats.connected.store(false, Ordering::Relaxed);
        stats.set_error(&err);
        if let ForwardError::Audit(AuditError::Closed) = err {
            tracing::info!("audit log closed; forwarding stops");
            return;
        }
        if delivered > before {
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            collector = %cfg.address,
            delivered_seq = delivered,
            retry_in_ms = backoff.as_millis() as u64,
            "audit forwarding interrupted: {err}"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life; returns why it ended. `delivered` moves as records are confirmed.
async fn session(
    log: &AuditLog,
    cfg: &ForwardConfig,
    cursor: &CursorFile,
    delivered: &mut u64,
    stats: &ForwardStats,
) -> ForwardError {
    let conn = match Conn::open(&cfg.address, cfg.tls.as_ref(), &cfg.server_name).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    stats.connected.store(true, Ordering::Relaxed);
    tracing::info!(collector = %cfg.address, after_seq = *delivered, "connected to the audit collector");
    let (io, probe) = conn.into_parts();
    let (rd, mut wr) = tokio::io::split(io);
    let closed = peer_closed(rd);
    tokio::pin!(closed);
    let mut tracker = AckTracker::new(*delivered, cfg.ack_grace);
    let mut committed = log.subscribe();
    let mut next = *delivered + 1;
    let mut stored = *delivered;
    let mut last_store = Instant::now();
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        committed.borrow_and_update();
        let batch = match read_batch(log, next, cfg.batch).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        if let Some(&(first, _)) = batch.first()
            && first > next
        {
            stats.skipped.fetch_add(first - next, Ordering::Relaxed);
            tracing::error!(
                from = next,
                to = first - 1,
                "audit records were pruned before they could be forwarded"
            );
        }
        if let Some(&(last, _)) = batch.last() {
            let n = batch.len() as u64;
            out.clear();
            if let Err(e) = encode(cfg, batch, &mut out) {
                return e;
            }
            let write = async {
                wr.write_all(&out).await?;
                wr.flush().await
            };
            tokio::select! {
                r = write => if let Err(e) = r { return ForwardError::Io(e) },
                e = &mut closed => return e,
            }
            tracker.sent(probe.written(), last);
            stats.sent_seq.store(last, Ordering::Relaxed);
            stats.records_sent.fetch_add(n, Ordering::Relaxed);
            next = last + 1;
        } else {
            let wait = if tracker.is_idle() {
                Duration::from_secs(5)
            } else {
                ACK_POLL
            };
            tokio::select! {
                changed = committed.changed() => if changed.is_err() {
                    return ForwardError::Audit(AuditError::Closed);
                },
                _ = tokio::time::sleep(wait) => {}
                e = &mut closed => return e,
            }
        }
        match probe.acked() {
            Ok(acked) => tracker.peer_acked(acked, Instant::now()),
            Err(e) => return e,
        }
        *delivered = tracker.settle(Instant::now());
        stats.delivered_seq.store(*delivered, Ordering::Relaxed);
        if *delivered > stored && last_store.elapsed() >= STORE_EVERY {
            last_store = Instant::now();
            match store(cursor, *delivered, &cfg.address).await {
                Ok(()) => stored = *delivered,
                // Forwarding goes on; a cursor left behind only means records sent again.
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
}

async fn read_batch(log: &AuditLog, from: u64, max: usize) -> Result<Vec<Stored>, ForwardError> {
    let db = Arc::clone(log.database());
    tokio::task::spawn_blocking(move || stored_from(&db, from, max))
        .await
        .map_err(|_| ForwardError::Audit(AuditError::WriterGone))?
        .map_err(ForwardError::from)
}

/// The frames of `batch`, appended to `out`.
fn encode(cfg: &ForwardConfig, batch: Vec<Stored>, out: &mut Vec<u8>) -> Result<(), ForwardError> {
    let mut body = Vec::with_capacity(1024);
    for (seq, map) in batch {
        body.clear();
        let head = RecordHead::of(seq, &map);
        write_line(seq, map.clone(), cfg.format, &mut body)?;
        frame(&cfg.header, &head, &body, out);
    }
    Ok(())
}

async fn store(cursor: &CursorFile, seq: u64, collector: &str) -> Result<(), ForwardError> {
    let (cursor, collector) = (cursor.clone(), collector.to_owned());
    tokio::task::spawn_blocking(move || cursor.store(seq, &collector))
        .await
        .map_err(|_| ForwardError::Audit(AuditError::WriterGone))?
}

/// Resolves when the collector closes the connection (a collector never sends data; TLS
/// records it does send, such as session tickets, are read and dropped).
async fn peer_closed(mut rd: ReadHalf<Box<dyn Io>>) -> ForwardError {
    let mut buf = [0u8; 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => return ForwardError::Closed,
            Ok(_) => {}
            Err(e) => return ForwardError::Io(e),
        }
    }
}
