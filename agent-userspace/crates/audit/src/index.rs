//! Records the write-ahead log holds and redb does not yet.
//!
//! Why: with a log, redb is the index readers query, not what keeps a record. Inserting
//! each commit group on its own (a few records at a time under load) made the redb
//! transaction, its page allocation and checksums, most of the writer's CPU per record.
//! Gathered here, records go into redb in one transaction per `MAX_RECORDS` or per
//! `MAX_DELAY`, whichever comes first; readers that need them wait that long at most
//! (`AuditLog::settled`). Until then replay recovers them from the log, and a checkpoint
//! inserts them before it lets the log start over.

use std::time::{Duration, Instant};

use redb::{Database, Durability};

use crate::chunks::ChunkWriter;
use crate::encoded::Encoded;
use crate::error::AuditError;
use crate::store::{ChainPoint, insert_records};

/// Records gathered before an insert is due regardless of age.
pub(crate) const MAX_RECORDS: usize = 1024;
/// How long a record may wait for its insert.
const MAX_DELAY: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(crate) struct Unindexed {
    /// Kept from one insert to the next (`encoded.rs`).
    records: Encoded,
    /// Frames them into redb's chunks (`chunks.rs`); its buffer is kept between inserts.
    chunks: ChunkWriter,
    /// When the oldest waiting record arrived.
    since: Option<Instant>,
    /// Set while inserts fail: when to try again, and the wait after that.
    retry: Option<(Instant, Duration)>,
    /// A log sync failed: the next insert must be durable, since the log may not hold them.
    durable: bool,
}

impl Unindexed {
    /// Takes a copy of a group the log now holds, in chain order.
    pub fn push(&mut self, group: &Encoded) {
        if group.is_empty() {
            return;
        }
        self.since.get_or_insert_with(Instant::now);
        self.records.extend(group);
    }

    /// See `Encoded::release_idle`.
    pub fn release_idle(&mut self) {
        self.records.release_idle();
    }

    pub fn need_durable(&mut self) {
        self.durable = true;
    }

    pub fn durable_needed(&self) -> bool {
        self.durable
    }

    /// The first and last seq waiting (`(0, 0)` when none).
    pub fn range(&self) -> (u64, u64) {
        (
            self.records.first_seq().unwrap_or(0),
            self.records.tip().map_or(0, |t| t.seq),
        )
    }

    /// Time left until an insert is due; `None` when nothing waits.
    pub fn due_in(&self) -> Option<Duration> {
        let since = self.since?;
        if let Some((at, _)) = self.retry {
            return Some(at.saturating_duration_since(Instant::now()));
        }
        if self.records.len() >= MAX_RECORDS {
            return Some(Duration::ZERO);
        }
        Some(MAX_DELAY.saturating_sub(since.elapsed()))
    }

    /// Inserts everything waiting in one transaction and returns the new tip redb holds and
    /// how many records went in. Non-durable when the log (or the next checkpoint's durable
    /// commit) keeps them; durable without a log, or after a failed log sync. On failure
    /// the records stay, in order, for the next attempt, which backs off.
    pub fn insert(
        &mut self,
        db: &Database,
        durable: bool,
    ) -> Result<Option<(ChainPoint, u64)>, AuditError> {
        let Some(tip) = self.records.tip() else {
            return Ok(None);
        };
        let mode = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        match insert_records(db, &self.records, &tip, mode, &mut self.chunks) {
            Ok(()) => {
                let n = self.records.len() as u64;
                self.records.clear();
                self.since = None;
                self.retry = None;
                if durable {
                    self.durable = false;
                }
                Ok(Some((tip, n)))
            }
            Err(e) => {
                let wait = self
                    .retry
                    .map_or(Duration::from_millis(50), |(_, w)| (w * 2).min(MAX_BACKOFF));
                self.retry = Some((Instant::now() + wait, wait));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::GENESIS_HASH;
    use crate::encode::Draft;
    use crate::record::{EventKind, NewRecord, now_micros};
    use crate::store::META_HEAD;

    /// `n` chained records after `after` (`None`: from genesis).
    fn records(after: Option<&ChainPoint>, seqs: std::ops::RangeInclusive<u64>) -> Encoded {
        let (mut e, mut scratch) = (Encoded::default(), Draft::default());
        let start = after.map_or(GENESIS_HASH, |p| p.hash.as_str());
        for seq in seqs {
            let r = NewRecord::new(EventKind::Request);
            e.push(seq, &now_micros(), &r, start, &mut scratch);
        }
        e
    }

    #[test]
    fn nothing_is_due_until_a_record_waits_and_a_full_batch_is_due_at_once() {
        let mut u = Unindexed::default();
        assert_eq!(u.due_in(), None);
        let first = records(None, 1..=1);
        u.push(&first);
        let left = u.due_in().expect("due");
        assert!(left > Duration::ZERO && left <= MAX_DELAY, "{left:?}");
        u.push(&records(first.tip().as_ref(), 2..=MAX_RECORDS as u64));
        assert_eq!(u.due_in(), Some(Duration::ZERO));
    }

    #[test]
    fn an_insert_writes_every_waiting_record_and_the_head_in_one_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("a.redb")).expect("db");
        let mut u = Unindexed::default();
        let two = records(None, 1..=2);
        u.push(&two);
        u.push(&records(two.tip().as_ref(), 3..=3));
        let (tip, n) = u.insert(&db, false).expect("insert").expect("tip");
        assert_eq!(n, 3);
        assert_eq!(tip.seq, 3);
        assert!(u.due_in().is_none());
        assert_eq!(
            crate::store::read_claimed_head(&db).expect("newest record"),
            tip
        );
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        let meta = crate::store::open_meta(&txn)
            .expect("meta")
            .expect("meta table");
        let head: ChainPoint = crate::store::get_meta(&meta, META_HEAD)
            .expect("head")
            .expect("head written");
        assert_eq!(head, tip);
        assert_ne!(head.hash, GENESIS_HASH);
        assert_eq!(u.insert(&db, false).expect("empty insert"), None);
    }
}
