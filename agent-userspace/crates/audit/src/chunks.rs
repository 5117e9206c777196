//! How records sit in redb: runs of consecutive records share one value, a chunk.
//!
//! Why: with one B-tree entry per record, redb's insert (the tree walk, a leaf rebuilt or split
//! every few records, page allocation) was the largest single cost left in the writer: redb
//! was about 9% of the daemon's CPU at 64 keep-alive connections, its inserts most of it. A
//! standalone run of redb 4.6 inserting records of 420 and 700 bytes, 400 per transaction, took
//! 2.8 µs of CPU a record one per entry and 0.75 µs in chunks as below.
//!
//! `audit_chunks`: key = the seq of the chunk's first record; value = frames
//! `len u32 (little endian) | record bytes`, for seqs key, key + 1, ... in order. A chunk never
//! holds a gap: a run that skips a seq starts a new chunk, so a missing record still shows as a
//! missing seq. The records' bytes are exactly what was hashed into the chain; the framing
//! carries no trust of its own (a frame that runs past its chunk is reported as a corrupt
//! record).
//!
//! Size: redb gives a value of more than a page a run of pages rounded up to a power of two,
//! so a chunk is closed before it would pass [`MAX_BYTES`], just under 32 KiB (a record larger
//! than that gets a chunk of its own), or at [`MAX_RECORDS`]. A transaction continues the
//! newest chunk while it has room ([`ChunkWriter::resume`]), so a quiet log, a few records a
//! transaction, still fills its chunks. Measured the same standalone way (400,000 records of
//! 420 and 700 bytes, 226 MB): one record per entry took 277 MB of pages, chunks closed at 64
//! records (about 36 KB each, so 64 KiB runs) 410 MB, and chunks closed under 32 KiB 234 MB.
//!
//! `audit_records`, one record per entry, is the layout before chunks. [`migrate_legacy`] moves
//! its records, byte for byte, into chunks the first time a newer daemon or the offline CLI
//! opens the database.

use redb::{
    AccessGuard, Range, ReadableTable, Table, TableDefinition, TableHandle, WriteTransaction,
};

use crate::error::{AuditError, DbContext};
use crate::store::{RecordsTable, corrupt};

pub(crate) const CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_chunks");
/// The layout before chunks; read only by [`migrate_legacy`].
pub(crate) const LEGACY_RECORDS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_records");

/// Records per chunk at most (small records: a read of one record parses its chunk's frames).
pub(crate) const MAX_RECORDS: usize = 256;
/// A chunk's bytes at most, unless it holds one larger record: 32 KiB less room for redb's
/// leaf header and the entry's key and offsets.
pub(crate) const MAX_BYTES: usize = (32 << 10) - 512;

const LEN: usize = 4;

/// The record framed at `at` in `value` and where the next one starts; `None` at the end.
/// `seq` only names the record in the error.
fn frame_at(value: &[u8], at: usize, seq: u64) -> Result<Option<(&[u8], usize)>, AuditError> {
    if at == value.len() {
        return Ok(None);
    }
    let Some(word) = value.get(at..at + LEN) else {
        return Err(corrupt(seq, "chunk ends inside a frame's length"));
    };
    let len = u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize;
    let start = at + LEN;
    match value.get(start..start + len) {
        Some(body) => Ok(Some((body, start + len))),
        None => Err(corrupt(
            seq,
            format!("chunk frame of {len} bytes runs past the chunk's end"),
        )),
    }
}

/// The records of one chunk: `(seq, bytes)` in order. A bad frame is one error, then the end.
pub(crate) fn records(first: u64, value: &[u8]) -> Frames<'_> {
    Frames {
        value,
        at: 0,
        seq: first,
    }
}

pub(crate) struct Frames<'a> {
    value: &'a [u8],
    at: usize,
    seq: u64,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(u64, &'a [u8]), AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        match frame_at(self.value, self.at, self.seq) {
            Ok(Some((body, next))) => {
                let seq = self.seq;
                self.at = next;
                self.seq += 1;
                Some(Ok((seq, body)))
            }
            Ok(None) => None,
            Err(e) => {
                self.at = self.value.len();
                Some(Err(e))
            }
        }
    }
}

/// Gathers records into chunks and inserts each as it closes. Reused across transactions so
/// its buffer is allocated once.
#[derive(Default)]
pub(crate) struct ChunkWriter {
    buf: Vec<u8>,
    first: u64,
    next: u64,
    count: usize,
}

impl ChunkWriter {
    /// Continues the table's newest chunk when `next` follows it and it has room: the records
    /// pushed next join it, and closing rewrites it under the same key, byte for byte with
    /// them after. A newest chunk whose frames do not parse is left as it is.
    pub fn resume(&mut self, table: &Table<u64, &[u8]>, next: u64) -> Result<(), AuditError> {
        if self.count > 0 {
            return Ok(());
        }
        let Some((key, value)) = table.last().ctx("read newest audit chunk")? else {
            return Ok(());
        };
        let (first, value) = (key.value(), value.value());
        if value.len() >= MAX_BYTES {
            return Ok(());
        }
        let mut count = 0usize;
        for r in records(first, value) {
            if r.is_err() {
                return Ok(());
            }
            count += 1;
        }
        if count == 0 || count >= MAX_RECORDS || first + count as u64 != next {
            return Ok(());
        }
        self.buf.extend_from_slice(value);
        self.first = first;
        self.next = next;
        self.count = count;
        Ok(())
    }

    /// Adds the record at `seq`; closes the open chunk first when `seq` does not follow it or
    /// the record would not fit.
    pub fn push(
        &mut self,
        table: &mut Table<u64, &[u8]>,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), AuditError> {
        if self.count > 0
            && (seq != self.next
                || self.count >= MAX_RECORDS
                || self.buf.len() + LEN + bytes.len() > MAX_BYTES)
        {
            self.close(table)?;
        }
        if self.count == 0 {
            self.first = seq;
        }
        let len = u32::try_from(bytes.len())
            .map_err(|_| corrupt(seq, "a record of 4 GiB or more cannot be framed"))?;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(bytes);
        self.next = seq + 1;
        self.count += 1;
        Ok(())
    }

    /// Forgets the open chunk without inserting it.
    pub fn discard(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    /// Inserts the open chunk, if any. Call before the transaction commits.
    pub fn close(&mut self, table: &mut Table<u64, &[u8]>) -> Result<(), AuditError> {
        if self.count > 0 {
            table
                .insert(self.first, self.buf.as_slice())
                .ctx("insert audit chunk")?;
        }
        self.discard();
        if self.buf.capacity() > 4 * MAX_BYTES {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

/// Inserts `records` (in seq order) as chunks, the first continuing the newest chunk when it
/// can.
pub(crate) fn insert_all<'r>(
    table: &mut Table<u64, &[u8]>,
    writer: &mut ChunkWriter,
    records: impl IntoIterator<Item = (u64, &'r [u8])>,
) -> Result<(), AuditError> {
    // A transaction that failed part way left its chunk behind; it was never committed.
    writer.discard();
    let mut records = records.into_iter().peekable();
    if let Some(&(seq, _)) = records.peek() {
        writer.resume(table, seq)?;
    }
    for (seq, bytes) in records {
        writer.push(table, seq, bytes)?;
    }
    writer.close(table)
}

/// The newest stored record: its seq and bytes.
pub(crate) fn last_record(table: &RecordsTable) -> Result<Option<(u64, Vec<u8>)>, AuditError> {
    let Some((key, value)) = table.last().ctx("read last audit chunk")? else {
        return Ok(None);
    };
    let mut last = None;
    for r in records(key.value(), value.value()) {
        let (seq, bytes) = r?;
        last = Some((seq, bytes));
    }
    Ok(last.map(|(seq, bytes)| (seq, bytes.to_vec())))
}

/// Stored records with seq >= `from`, oldest first, each as `(seq, bytes)`, from one read
/// snapshot.
pub(crate) struct StoredRecords {
    range: Range<'static, u64, &'static [u8]>,
    chunk: Option<AccessGuard<'static, &'static [u8]>>,
    at: usize,
    seq: u64,
    from: u64,
}

pub(crate) fn records_from(table: &RecordsTable, from: u64) -> Result<StoredRecords, AuditError> {
    // The chunk holding `from` starts at or before it.
    let start = match table.range(..=from).ctx("find audit chunk")?.next_back() {
        Some(entry) => entry.ctx("read audit chunk")?.0.value(),
        None => from,
    };
    Ok(StoredRecords {
        range: table.range(start..).ctx("range audit chunks")?,
        chunk: None,
        at: 0,
        seq: 0,
        from,
    })
}

impl Iterator for StoredRecords {
    type Item = Result<(u64, Vec<u8>), AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(chunk) = &self.chunk {
                match frame_at(chunk.value(), self.at, self.seq) {
                    Ok(Some((body, next))) => {
                        let seq = self.seq;
                        self.at = next;
                        self.seq += 1;
                        if seq >= self.from {
                            return Some(Ok((seq, body.to_vec())));
                        }
                        continue;
                    }
                    Ok(None) => self.chunk = None,
                    Err(e) => {
                        self.chunk = None;
                        return Some(Err(e));
                    }
                }
            }
            let (key, value) = match self.range.next()?.ctx("read audit chunk") {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            self.seq = key.value();
            self.at = 0;
            self.chunk = Some(value);
        }
    }
}

/// Moves the records of the pre-chunk table (`audit_records`), if there is one, into chunks,
/// byte for byte and with any gaps kept, then deletes that table. Runs inside the caller's
/// transaction, so a failure leaves the old table as it was.
pub(crate) fn migrate_legacy(txn: &WriteTransaction) -> Result<u64, AuditError> {
    let exists = txn
        .list_tables()
        .ctx("list tables")?
        .any(|t| t.name() == LEGACY_RECORDS.name());
    if !exists {
        return Ok(0);
    }
    let mut moved = 0u64;
    {
        let legacy = txn.open_table(LEGACY_RECORDS).ctx("open audit_records")?;
        let mut chunks = txn.open_table(CHUNKS).ctx("open audit_chunks")?;
        let mut writer = ChunkWriter::default();
        for entry in legacy.iter().ctx("iterate audit_records")? {
            let (key, value) = entry.ctx("read audit record")?;
            writer.push(&mut chunks, key.value(), value.value())?;
            moved += 1;
        }
        writer.close(&mut chunks)?;
    }
    txn.delete_table(LEGACY_RECORDS)
        .ctx("delete audit_records")?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase};

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("c.redb")).expect("db");
        (dir, db)
    }

    fn write(db: &Database, recs: &[(u64, Vec<u8>)]) {
        let txn = db.begin_write().expect("write");
        {
            let mut t = txn.open_table(CHUNKS).expect("table");
            let mut w = ChunkWriter::default();
            insert_all(&mut t, &mut w, recs.iter().map(|(s, b)| (*s, b.as_slice())))
                .expect("insert");
        }
        txn.commit().expect("commit");
    }

    fn read_from(db: &Database, from: u64) -> Vec<(u64, Vec<u8>)> {
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(CHUNKS).expect("table");
        records_from(&t, from)
            .expect("iter")
            .map(|r| r.expect("record"))
            .collect()
    }

    fn chunk_keys(db: &Database) -> Vec<u64> {
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(CHUNKS).expect("table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry").0.value())
            .collect()
    }

    fn rec(seq: u64, len: usize) -> (u64, Vec<u8>) {
        (seq, vec![b'a' + (seq % 26) as u8; len])
    }

    #[test]
    fn records_read_back_in_order_from_any_seq_across_chunk_boundaries() {
        let (_d, db) = db();
        let recs: Vec<_> = (1..=600).map(|s| rec(s, 10 + (s % 100) as usize)).collect();
        write(&db, &recs);
        assert_eq!(chunk_keys(&db), vec![1, 257, 513], "256 records a chunk");
        assert_eq!(read_from(&db, 0), recs);
        for from in [1, 2, 256, 257, 258, 400, 600] {
            assert_eq!(
                read_from(&db, from),
                recs[from as usize - 1..],
                "from {from}"
            );
        }
        assert!(read_from(&db, 601).is_empty());
    }

    #[test]
    fn a_gap_in_the_seqs_starts_a_new_chunk_so_it_stays_visible() {
        let (_d, db) = db();
        let recs = vec![rec(1, 5), rec(2, 5), rec(4, 5), rec(5, 5)];
        write(&db, &recs);
        assert_eq!(chunk_keys(&db), vec![1, 4]);
        let seqs: Vec<u64> = read_from(&db, 0).into_iter().map(|(s, _)| s).collect();
        assert_eq!(seqs, vec![1, 2, 4, 5]);
        assert_eq!(read_from(&db, 3), recs[2..]);
    }

    #[test]
    fn a_chunk_closes_at_its_byte_bound_and_a_large_record_stands_alone() {
        let (_d, db) = db();
        let recs = vec![
            rec(1, MAX_BYTES - 10),
            rec(2, 100),
            rec(3, 3 * MAX_BYTES),
            rec(4, 1),
        ];
        write(&db, &recs);
        assert_eq!(chunk_keys(&db), vec![1, 2, 3, 4]);
        assert_eq!(read_from(&db, 0), recs);
    }

    #[test]
    fn a_quiet_log_fills_its_newest_chunk_across_transactions() {
        let (_d, db) = db();
        let recs: Vec<_> = (1..=30).map(|s| rec(s, 50)).collect();
        for three in recs.chunks(3) {
            write(&db, three);
        }
        assert_eq!(chunk_keys(&db), vec![1], "one chunk for ten transactions");
        assert_eq!(read_from(&db, 0), recs);
        // A transaction that does not follow the newest chunk starts its own.
        write(&db, &[rec(32, 50)]);
        write(&db, &[rec(33, 50)]);
        assert_eq!(chunk_keys(&db), vec![1, 32]);
    }

    #[test]
    fn a_newest_chunk_whose_frames_are_broken_is_left_as_it_is() {
        let (_d, db) = db();
        write(&db, &[rec(1, 50), rec(2, 50)]);
        let broken = {
            let txn = db.begin_write().expect("write");
            let mut value = {
                let t = txn.open_table(CHUNKS).expect("table");
                t.get(1).expect("get").expect("chunk").value().to_vec()
            };
            value.truncate(value.len() - 10);
            txn.open_table(CHUNKS)
                .expect("table")
                .insert(1, value.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
            value
        };
        write(&db, &[rec(3, 50)]);
        assert_eq!(chunk_keys(&db), vec![1, 3]);
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(CHUNKS).expect("table");
        assert_eq!(t.get(1).expect("get").expect("chunk").value(), &broken[..]);
    }

    #[test]
    fn the_last_record_is_the_last_frame_of_the_last_chunk() {
        let (_d, db) = db();
        let recs: Vec<_> = (1..=70).map(|s| rec(s, 7)).collect();
        write(&db, &recs);
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(CHUNKS).expect("table");
        assert_eq!(last_record(&t).expect("last"), Some(rec(70, 7)));
    }

    #[test]
    fn a_frame_running_past_its_chunk_is_a_corrupt_record_named_by_seq() {
        let mut value = Vec::new();
        value.extend_from_slice(&3u32.to_le_bytes());
        value.extend_from_slice(b"abc");
        value.extend_from_slice(&9u32.to_le_bytes());
        value.extend_from_slice(b"de");
        let got: Vec<_> = records(10, &value).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().expect("first"), &(10, &b"abc"[..]));
        let err = got[1].as_ref().expect_err("second is cut");
        assert!(
            matches!(err, AuditError::Corrupt { key, .. } if key == "11"),
            "{err}"
        );
        assert!(records(1, &[1, 0]).next().expect("one").is_err());
    }

    #[test]
    fn legacy_records_move_into_chunks_byte_for_byte_with_their_gaps() {
        let (_d, db) = db();
        let legacy: Vec<_> = [1u64, 2, 3, 5, 6].iter().map(|&s| rec(s, 20)).collect();
        let txn = db.begin_write().expect("write");
        {
            let mut t = txn.open_table(LEGACY_RECORDS).expect("legacy");
            for (s, b) in &legacy {
                t.insert(*s, b.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        let txn = db.begin_write().expect("write");
        assert_eq!(migrate_legacy(&txn).expect("migrate"), 5);
        txn.commit().expect("commit");
        assert_eq!(read_from(&db, 0), legacy);
        assert_eq!(chunk_keys(&db), vec![1, 5]);
        let txn = db.begin_write().expect("write");
        assert_eq!(
            migrate_legacy(&txn).expect("again"),
            0,
            "the old table is gone"
        );
        txn.commit().expect("commit");
    }
}
