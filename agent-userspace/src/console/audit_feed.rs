//! The live audit view's feed: Server-Sent Events, one record per event.
//! It opens with the newest records matching every filter — the action
//! filter included, searched back through the whole trail — and then
//! follows each commit, as `tail -f` does.
use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use cordon_audit::{AuditRecord, Filter};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::respond::Body;
use crate::{control::audit_read, daemon::Shared};

/// Matching records sent when the view opens; older ones stay in
/// `cordon audit`.
pub const BACKLOG: usize = 200;
/// How far back the opening search reads at most (records of any kind): a
/// rare action in a huge trail costs a bounded read, and the view says
/// where the search stopped.
pub const MAX_SCAN: u64 = 1_000_000;
/// The first window read backwards (`audit_read::newest_matching` doubles
/// it until enough records match).
const FIRST_WINDOW: u64 = 512;
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

/// What the view opens with.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The newest `n` matching records, oldest first.
    pub records: Vec<AuditRecord>,
    /// The head seq they were read at (the follow continues after it).
    pub head: u64,
    /// The oldest seq read; above 1 when the search stopped at `MAX_SCAN`
    /// or at `n` matches.
    pub searched_from: u64,
}

/// The newest `n` records that pass `filter` and `wanted`'s action, read
/// backwards in growing windows from the head, at most `max_scan` records.
pub fn backlog(
    db: &redb::Database,
    filter: &Filter,
    wanted: &Wanted,
    n: usize,
    max_scan: u64,
) -> Result<Backlog, cordon_audit::AuditError> {
    let head = audit_read::head_seq(db)?;
    let low = head.saturating_sub(max_scan) + 1;
    let keep = |r: &AuditRecord| wanted.action_matches(r);
    let (records, searched_from) =
        audit_read::newest_matching(db, head, low, filter, keep, n, FIRST_WINDOW)?;
    Ok(Backlog {
        records,
        head,
        searched_from,
    })
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
    // Already filtered by action for the backlog; cheap to check again.
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
    let (f, w) = (filter.clone(), wanted.clone());
    let Some(first) = read(&d, move |db| backlog(db, &f, &w, BACKLOG, MAX_SCAN)).await else {
        return;
    };
    let mut seen = first.head;
    if !send_all(&tx, &wanted, &first.records).await {
        return;
    }
    let ready = json!({"searched_from": first.searched_from, "head": first.head});
    if tx
        .send(Bytes::from(format!("event: ready\ndata: {ready}\n\n")))
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
    use std::sync::Arc;

    use cordon_audit::{AuditConfig, AuditLog, Decision, EventKind, NewRecord};
    use redb::Database;

    use super::*;

    /// A trail of `n` requests: every 1000th (seq 1, 1001, ...) is a
    /// `github.repo.delete` by `a`, the rest `http.request` by `a` or `b`.
    fn trail(n: u64) -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("a.redb")).unwrap());
        // Batched: one commit per group, not one fsync per record.
        let cfg = AuditConfig {
            durability: cordon_audit::Durability::Batched { max_delay_ms: 5 },
            ..AuditConfig::default()
        };
        let log = AuditLog::open(db.clone(), cfg).unwrap();
        for i in 0..n {
            let rare = i % 1000 == 0;
            log.append_blocking(NewRecord {
                agent: Some(if rare || i % 2 == 0 { "a" } else { "b" }.into()),
                action: Some(
                    if rare {
                        "github.repo.delete"
                    } else {
                        "http.request"
                    }
                    .into(),
                ),
                decision: Some(Decision::Deny),
                ..NewRecord::new(EventKind::Request)
            })
            .unwrap();
        }
        log.shutdown().unwrap();
        (dir, db)
    }

    fn seqs(b: &Backlog) -> Vec<u64> {
        b.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn an_action_filter_finds_matches_older_than_the_newest_records() {
        let (_d, db) = trail(5000);
        let w = Wanted::from_query("action=github.repo.*");
        let b = backlog(&db, &Filter::default(), &w, BACKLOG, MAX_SCAN).unwrap();
        // Far older than the newest 200 records, all found.
        assert_eq!(seqs(&b), [1, 1001, 2001, 3001, 4001]);
        assert_eq!((b.head, b.searched_from), (5000, 1));
        // The newest n matching only, with the agent filter applied too.
        let f = audit_read::filter(Some("a".into()), Some("deny")).unwrap();
        let b = backlog(&db, &f, &w, 2, MAX_SCAN).unwrap();
        assert_eq!(seqs(&b), [3001, 4001]);
        assert!(
            b.searched_from > 1 && b.searched_from <= 3001,
            "{}",
            b.searched_from
        );
        let other = audit_read::filter(Some("b".into()), None).unwrap();
        assert!(
            backlog(&db, &other, &w, 10, MAX_SCAN)
                .unwrap()
                .records
                .is_empty()
        );
    }

    #[test]
    fn the_search_is_bounded_and_says_where_it_stopped() {
        let (_d, db) = trail(5000);
        let w = Wanted::from_query("action=github.repo.delete");
        let b = backlog(&db, &Filter::default(), &w, BACKLOG, 2500).unwrap();
        assert_eq!(seqs(&b), [3001, 4001]);
        assert_eq!(b.searched_from, 2501);
        let all = backlog(&db, &Filter::default(), &Wanted::default(), 3, MAX_SCAN).unwrap();
        assert_eq!(seqs(&all), [4998, 4999, 5000]);
        let (_e, empty) = trail(0);
        let none = backlog(&empty, &Filter::default(), &w, 5, MAX_SCAN).unwrap();
        assert!(none.records.is_empty());
        assert_eq!(none.head, 0);
    }

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
