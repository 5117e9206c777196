//! Encoded records, back to back in one buffer the writer keeps and reuses.
//!
//! Why: the writer used to allocate a byte vector and a hash string for every record and
//! free them when redb took them, up to 20 ms later (`index.rs`). Under load that is a
//! megabyte of short-lived blocks a second, freed in bursts and purged by the allocator
//! before the next burst touched them again; with an outcome record per request it was the
//! writer thread's largest cost. Two buffers kept across groups (the group being written and
//! the records waiting for redb) allocate nothing per record once they are warm.

use chrono::{DateTime, Utc};

use crate::encode::Draft;
use crate::store::ChainPoint;

/// Past this many bytes a buffer is dropped rather than kept once emptied, so a burst does
/// not pin its high-water mark for the daemon's life.
const KEEP_BYTES: usize = 4 << 20;

/// What an empty buffer keeps once the writer goes quiet (`Encoded::release_idle`).
pub(crate) const IDLE_KEEP_BYTES: usize = 64 << 10;

/// A record's hash: 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hash([u8; 64]);

impl Hash {
    pub fn of(digest: &[u8]) -> Hash {
        let mut hex = [0u8; 64];
        // A SHA-256 digest is 32 bytes: it always fills the 64 digits.
        if hex::encode_to_slice(digest, &mut hex).is_err() {
            unreachable!("a SHA-256 digest is 32 bytes");
        }
        Hash(hex)
    }

    /// A hash as stored (64 lowercase hex digits); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let bytes: [u8; 64] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(Hash(bytes))
    }

    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(&self.0) {
            Ok(s) => s,
            Err(_) => unreachable!("hex digits are ASCII"),
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy)]
struct Rec {
    seq: u64,
    /// Where the record's bytes end in `buf` (each starts where the one before ended).
    end: usize,
    hash: Hash,
}

/// Records in chain order: seq, stored bytes (hash included) and hash of each.
#[derive(Default)]
pub(crate) struct Encoded {
    buf: Vec<u8>,
    recs: Vec<Rec>,
}

impl Encoded {
    /// Encodes `rec` at `seq` and appends it, chained to the last record held, or to
    /// `chain_start` when there is none.
    #[cfg(test)]
    pub fn push(
        &mut self,
        seq: u64,
        ts: &DateTime<Utc>,
        rec: &crate::record::NewRecord,
        chain_start: &str,
        draft: &mut Draft,
    ) {
        draft.encode(rec);
        self.push_draft(seq, ts, draft, chain_start);
    }

    /// Appends a record already drafted (`Draft::encode`) at `seq`, chained as `push` chains.
    pub fn push_draft(&mut self, seq: u64, ts: &DateTime<Utc>, draft: &Draft, chain_start: &str) {
        let prev = self.recs.last().map(|r| r.hash);
        let prev = prev.as_ref().map_or(chain_start, Hash::as_str);
        let hash = draft.finish_into(seq, ts, prev, &mut self.buf);
        self.recs.push(Rec {
            seq,
            end: self.buf.len(),
            hash,
        });
    }

    /// Appends another run of records, which must continue this one's chain.
    pub fn extend(&mut self, other: &Encoded) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&other.buf);
        self.recs.extend(other.recs.iter().map(|r| Rec {
            end: base + r.end,
            ..*r
        }));
    }

    /// Drops the newest record (its write failed: the seq is given out again).
    pub fn pop(&mut self) {
        if self.recs.pop().is_some() {
            let end = self.recs.last().map_or(0, |r| r.end);
            self.buf.truncate(end);
        }
    }

    pub fn last_hash(&self) -> Option<Hash> {
        self.recs.last().map(|r| r.hash)
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.recs.last().map(|r| r.seq)
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.recs.first().map(|r| r.seq)
    }

    /// Empties it, keeping the buffers unless a burst made them large.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.recs.clear();
        self.shed_over(KEEP_BYTES);
    }

    /// Drops the buffers when they hold more than `keep` bytes of room.
    fn shed_over(&mut self, keep: usize) {
        if self.buf.capacity() > keep {
            self.buf = Vec::new();
            self.recs = Vec::new();
        }
    }

    /// Once empty and idle, gives back what a load left it holding beyond
    /// [`IDLE_KEEP_BYTES`]: under steady load it keeps its size (no regrowth per group).
    pub fn release_idle(&mut self) {
        if self.recs.is_empty() {
            self.shed_over(IDLE_KEEP_BYTES);
        }
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Total bytes of the records.
    #[cfg(test)]
    pub fn bytes_len(&self) -> usize {
        self.buf.len()
    }

    /// Each record's seq and stored bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.after(0)
    }

    /// The records after `seq`, in order; found by search, not by walking the ones before
    /// (an appender writing the queued tail of a long group asks for it on every append).
    pub fn after(&self, seq: u64) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let i = self.recs.partition_point(|r| r.seq <= seq);
        let mut start = i.checked_sub(1).map_or(0, |p| self.recs[p].end);
        self.recs[i..].iter().map(move |r| {
            let bytes = &self.buf[start..r.end];
            start = r.end;
            (r.seq, bytes)
        })
    }

    /// The newest record as a chain position.
    pub fn tip(&self) -> Option<ChainPoint> {
        self.recs.last().map(|r| ChainPoint {
            seq: r.seq,
            hash: r.hash.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::GENESIS_HASH;
    use crate::record::{EventKind, NewRecord, now_micros};

    fn rec(action: &str) -> NewRecord {
        let mut r = NewRecord::new(EventKind::Request);
        r.action = Some(action.into());
        r
    }

    /// A burst's records, each with a long action name, `n` of them.
    fn burst(n: u64) -> Encoded {
        let (ts, mut draft) = (now_micros(), Draft::default());
        let mut e = Encoded::default();
        let long = "x".repeat(1000);
        for seq in 1..=n {
            e.push(seq, &ts, &rec(&long), GENESIS_HASH, &mut draft);
        }
        e
    }

    #[test]
    fn an_idle_release_gives_back_a_bursts_buffer_only_once_it_is_empty() {
        let mut big = burst(200);
        assert!(big.buf.capacity() > IDLE_KEEP_BYTES);
        big.release_idle();
        assert_eq!(big.len(), 200, "records still held are never released");
        big.clear();
        assert!(
            big.buf.capacity() > IDLE_KEEP_BYTES,
            "clear keeps it for the next group"
        );
        big.release_idle();
        assert_eq!((big.buf.capacity(), big.recs.capacity()), (0, 0));

        let mut small = burst(3);
        small.clear();
        let kept = small.buf.capacity();
        small.release_idle();
        assert_eq!(small.buf.capacity(), kept, "a small buffer is kept");
    }

    #[test]
    fn records_chain_to_the_start_then_to_each_other_and_read_back_in_order() {
        let (ts, mut scratch) = (now_micros(), Draft::default());
        let mut e = Encoded::default();
        e.push(1, &ts, &rec("a"), GENESIS_HASH, &mut scratch);
        e.push(
            2,
            &ts,
            &rec("b"),
            "ignored once a record is held",
            &mut scratch,
        );
        let stored: Vec<(u64, serde_json::Value)> = e
            .iter()
            .map(|(seq, b)| (seq, serde_json::from_slice(b).expect("json")))
            .collect();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].1["prev_hash"], GENESIS_HASH);
        assert_eq!(stored[1].1["prev_hash"], stored[0].1["hash"]);
        assert_eq!(stored[1].0, 2);
        let tip = e.tip().expect("tip");
        assert_eq!(
            (tip.seq, serde_json::json!(tip.hash)),
            (2, stored[1].1["hash"].clone())
        );
    }

    #[test]
    fn extending_keeps_every_record_whole_and_clearing_empties_it() {
        let (ts, mut scratch) = (now_micros(), Draft::default());
        let (mut a, mut b) = (Encoded::default(), Encoded::default());
        a.push(1, &ts, &rec("a"), GENESIS_HASH, &mut scratch);
        let start = a.tip().expect("tip").hash;
        b.push(2, &ts, &rec("b"), &start, &mut scratch);
        b.push(3, &ts, &rec("c"), &start, &mut scratch);
        a.extend(&b);
        let seqs: Vec<u64> = a.iter().map(|(s, _)| s).collect();
        assert_eq!(seqs, [1, 2, 3]);
        let joined: usize = a.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(joined, a.bytes_len());
        for (_, bytes) in a.iter() {
            serde_json::from_slice::<serde_json::Value>(bytes).expect("each record is whole");
        }
        a.clear();
        assert!(a.is_empty() && a.tip().is_none() && a.bytes_len() == 0);
    }

    #[test]
    fn the_records_after_a_seq_are_the_same_bytes_iter_gives_for_them() {
        let (ts, mut scratch) = (now_micros(), Draft::default());
        let mut e = Encoded::default();
        for (seq, name) in [(4, "d"), (5, "e"), (6, "f")] {
            e.push(seq, &ts, &rec(name), GENESIS_HASH, &mut scratch);
        }
        let all: Vec<(u64, Vec<u8>)> = e.iter().map(|(s, b)| (s, b.to_vec())).collect();
        for from in 0..=7 {
            let after: Vec<(u64, Vec<u8>)> = e.after(from).map(|(s, b)| (s, b.to_vec())).collect();
            let want: Vec<(u64, Vec<u8>)> =
                all.iter().filter(|(s, _)| *s > from).cloned().collect();
            assert_eq!(after, want, "after {from}");
        }
    }
}
