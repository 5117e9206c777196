//! The live audit view's feed: Server-Sent Events, one record per event.
//! It opens with the newest matching records (read as `cordon audit tail`
//! reads them) and then follows each commit, as `tail -f` does.
use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use cordon_audit::{AuditRecord, Filter};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::respond::Body;
use crate::{control::audit_read, daemon::Shared};

/// Records sent when the view opens; older ones stay in `cordon audit`.
pub const BACKLOG: usize = 200;
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The view's filters: agent and decision as `audit tail` takes them,
/// and an action (exact, or a prefix ending in `*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    pub agent: Option<String>,
    pub decision: Option<String>,
    pub action: Option<String>,
}

impl Wanted {
    pub fn from_query(query: &str) -> Wanted {
        let mut w = Wanted::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            match k.as_ref() {
                "agent" => w.agent = Some(v),
                "decision" => w.decision = Some(v),
                "action" => w.action = Some(v),
                _ => {}
            }
        }
        w
    }

    pub fn action_matches(&self, r: &AuditRecord) -> bool {
        let Some(want) = &self.action else {
            return true;
        };
        let action = r.action.as_deref().unwrap_or("");
        match want.strip_suffix('*') {
            Some(prefix) => action.starts_with(prefix),
            None => action == want,
        }
    }
}

/// What the page shows of a record (params included: the trail holds no
/// secrets, the proxy redacts them before a record is written).
pub fn view(r: &AuditRecord) -> Value {
    json!({
        "seq": r.seq,
        "ts": r.ts,
        "kind": r.kind.as_str(),
        "agent": r.chain.as_deref().or(r.agent.as_deref()),
        "action": r.action,
        "params": r.params,
        "decision": r.decision.map(|d| d.as_str()),
        "would": r.would.map(|w| w.as_str()),
        "rule": r.rule,
        "reason": r.reason,
        "approver": r.approver,
        "status": r.upstream_status,
    })
}

fn event(r: &AuditRecord) -> Bytes {
    Bytes::from(format!("data: {}\n\n", view(r)))
}

/// Starts the feed; the stream ends when the client goes or the log closes.
pub fn open(d: &Shared, wanted: Wanted) -> Result<Body, String> {
    let filter: Filter = audit_read::filter(wanted.agent.clone(), wanted.decision.as_deref())?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(feed(d.clone(), filter, wanted, tx));
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Ok(StreamBody::new(frames).boxed())
}

async fn read<T: Send + 'static>(
    d: &Shared,
    f: impl FnOnce(&redb::Database) -> Result<T, cordon_audit::AuditError> + Send + 'static,
) -> Option<T> {
    let db = d.audit.database().clone();
    match tokio::task::spawn_blocking(move || f(&db)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!("console audit feed: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("console audit feed: {e}");
            None
        }
    }
}

async fn send_all(tx: &mpsc::Sender<Bytes>, wanted: &Wanted, recs: &[AuditRecord]) -> bool {
    for r in recs.iter().filter(|r| wanted.action_matches(r)) {
        if tx.send(event(r)).await.is_err() {
            return false;
        }
    }
    true
}

async fn feed(d: Shared, filter: Filter, wanted: Wanted, tx: mpsc::Sender<Bytes>) {
    // Subscribed before reading, so nothing committed in between is missed.
    let mut committed = d.audit.subscribe();
    d.audit.settled().await;
    let f = filter.clone();
    let Some((first, mut seen)) = read(&d, move |db| audit_read::tail(db, &f, BACKLOG)).await
    else {
        return;
    };
    if !send_all(&tx, &wanted, &first).await {
        return;
    }
    if tx
        .send(Bytes::from_static(b"event: ready\ndata: {}\n\n"))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            changed = committed.changed() => {
                if changed.is_err() {
                    return;
                }
                let upto = *committed.borrow_and_update();
                if upto <= seen {
                    continue;
                }
                let (f, after) = (filter.clone(), seen);
                let Some(recs) = read(&d, move |db| audit_read::committed_between(db, after, upto, &f)).await else {
                    return;
                };
                if !send_all(&tx, &wanted, &recs).await {
                    return;
                }
                seen = upto;
            }
            _ = tokio::time::sleep(KEEPALIVE) => {
                if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cordon_audit::{EventKind, NewRecord};

    use super::*;

    fn rec(action: &str) -> AuditRecord {
        AuditRecord {
            seq: 1,
            ts: chrono::Utc::now(),
            record: NewRecord {
                action: Some(action.into()),
                ..NewRecord::new(EventKind::Request)
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn filters_come_from_the_query_and_blanks_mean_any() {
        let w = Wanted::from_query("agent=bot&decision=&action=github.pr.%2A&x=1");
        assert_eq!(w.agent.as_deref(), Some("bot"));
        assert_eq!(w.decision, None);
        assert_eq!(w.action.as_deref(), Some("github.pr.*"));
    }

    #[test]
    fn an_action_filter_is_exact_or_a_prefix() {
        let exact = Wanted::from_query("action=github.pr.merge");
        assert!(exact.action_matches(&rec("github.pr.merge")));
        assert!(!exact.action_matches(&rec("github.pr.merged")));
        let prefix = Wanted::from_query("action=github.*");
        assert!(prefix.action_matches(&rec("github.pr.merge")));
        assert!(!prefix.action_matches(&rec("http.request")));
        assert!(Wanted::default().action_matches(&rec("anything")));
    }
}
