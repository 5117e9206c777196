//! Reading the commits out of a pushed pack, within fixed bounds.
//!
//! A pack is `PACK`, a version (2 or 3), an object count, then entries: a type-and-size
//! header, for deltas the base (a negative offset or an object id), then zlib data. Only
//! commits matter here (their parent links prove fast-forwards), but every entry has to be
//! inflated to find where the next one starts. Deltas are resolved when their base came
//! earlier in the pack, as git's pack-objects writes them; a delta whose base is elsewhere
//! (a thin pack's base on the server) stays unknown.
//!
//! Every object id is computed here from the object's contents, so a commit found in the pack
//! is exactly what the server will store, whatever the client claims.

use super::delta;
use super::inflate::inflate;
use super::oid::{HashKind, ObjectId};
use std::collections::HashMap;

/// Bounds on the work one pack may cause.
#[derive(Debug, Clone, Copy)]
pub struct PackLimits {
    /// Entries read at most.
    pub max_objects: u32,
    /// Total bytes inflated across all entries (zlib can expand ~1000:1).
    pub max_inflated: usize,
    /// Largest commit (or delta of one) kept in memory.
    pub max_commit_size: usize,
    /// Total bytes of commits kept in memory.
    pub max_kept: usize,
}

impl Default for PackLimits {
    fn default() -> Self {
        Self {
            max_objects: 200_000,
            max_inflated: 64 * 1024 * 1024,
            max_commit_size: 1024 * 1024,
            max_kept: 16 * 1024 * 1024,
        }
    }
}

/// Why reading stopped before the end of the pack (if it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackStop {
    /// Every entry the header announced was read.
    Complete,
    /// No pack followed the command list (a delete-only push).
    NoPack,
    /// The body ended (or was cut at the proxy's limit) inside the pack.
    Truncated,
    /// Not a pack git would accept.
    Corrupt,
    /// A bound of [`PackLimits`] was reached.
    LimitReached,
}

/// The commits of a pack: id → parent ids.
#[derive(Debug, Clone, Default)]
pub struct PackCommits {
    pub parents: HashMap<ObjectId, Vec<ObjectId>>,
    /// Deltas rebuilt into commits from a base earlier in the pack.
    pub resolved_deltas: usize,
    /// Deltas whose base was not in the pack (or not resolvable within the limits).
    pub unresolved_deltas: usize,
}

const COMMIT: u8 = 1;
const TREE: u8 = 2;
const BLOB: u8 = 3;
const TAG: u8 = 4;
const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;

/// Scan `pack` (everything after the command list; possibly a prefix).
pub fn scan(pack: &[u8], hash: HashKind, limits: &PackLimits) -> (PackCommits, PackStop) {
    let mut found = PackCommits::default();
    if pack.is_empty() {
        return (found, PackStop::NoPack);
    }
    let stop = Scanner {
        pack,
        hash,
        limits,
        inflated: 0,
        kept_bytes: 0,
        kept: HashMap::new(),
        offset_of: HashMap::new(),
    }
    .run(&mut found);
    (found, stop)
}

struct Scanner<'a> {
    pack: &'a [u8],
    hash: HashKind,
    limits: &'a PackLimits,
    inflated: usize,
    kept_bytes: usize,
    /// Commits by pack offset, kept as possible delta bases.
    kept: HashMap<usize, Vec<u8>>,
    offset_of: HashMap<ObjectId, usize>,
}

impl Scanner<'_> {
    fn run(&mut self, found: &mut PackCommits) -> PackStop {
        let Some(header) = self.pack.get(..12) else {
            return PackStop::Truncated;
        };
        let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if &header[..4] != b"PACK" || !(version == 2 || version == 3) {
            return PackStop::Corrupt;
        }
        let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if count > self.limits.max_objects {
            return PackStop::LimitReached;
        }
        let mut pos = 12;
        for _ in 0..count {
            match self.entry(pos, found) {
                Ok(next) => pos = next,
                Err(stop) => return stop,
            }
        }
        PackStop::Complete
    }

    /// Read the entry at `start`; return where the next one begins.
    fn entry(&mut self, start: usize, found: &mut PackCommits) -> Result<usize, PackStop> {
        let (kind, size, mut pos) = entry_header(self.pack, start)?;
        let base = match kind {
            OFS_DELTA => {
                let (back, next) = ofs_base(self.pack, pos)?;
                pos = next;
                Some(Base::Offset(
                    start.checked_sub(back).ok_or(PackStop::Corrupt)?,
                ))
            }
            REF_DELTA => {
                let len = self.hash.len();
                let raw = self.pack.get(pos..pos + len).ok_or(PackStop::Truncated)?;
                pos += len;
                Some(Base::Id(ObjectId::from_raw(raw)))
            }
            COMMIT | TREE | BLOB | TAG => None,
            _ => return Err(PackStop::Corrupt),
        };
        // Deltas are kept when small, since until resolved their type is unknown.
        let keep = (kind == COMMIT || base.is_some()) && size <= self.limits.max_commit_size;
        let pack = self.pack;
        let budget = self.limits.max_inflated;
        let (data, used) = inflate(&pack[pos..], size, keep, &mut self.inflated, budget)?;
        let next = pos + used;
        let Some(data) = data else {
            return Ok(next);
        };
        let commit = match base {
            None => Some(data),
            Some(base) => self.resolve(&base, &data, found),
        };
        if let Some(commit) = commit {
            self.add_commit(start, commit, found);
        }
        Ok(next)
    }

    /// The commit a delta rebuilds, if its base is a commit kept earlier.
    fn resolve(&self, base: &Base, delta: &[u8], found: &mut PackCommits) -> Option<Vec<u8>> {
        let base_offset = match base {
            Base::Offset(o) => Some(*o),
            Base::Id(id) => self.offset_of.get(id).copied(),
        };
        let resolved = base_offset
            .and_then(|o| self.kept.get(&o))
            .and_then(|b| delta::apply(b, delta, self.limits.max_commit_size).ok());
        match resolved {
            Some(_) => found.resolved_deltas += 1,
            None => found.unresolved_deltas += 1,
        }
        resolved
    }

    fn add_commit(&mut self, offset: usize, data: Vec<u8>, found: &mut PackCommits) {
        let id = self.hash.object_id("commit", &data);
        found.parents.insert(id.clone(), parents(&data, self.hash));
        // Past the memory bound commits are still recorded, just not kept as delta bases.
        if self.kept_bytes + data.len() <= self.limits.max_kept {
            self.kept_bytes += data.len();
            self.offset_of.insert(id, offset);
            self.kept.insert(offset, data);
        }
    }
}

enum Base {
    Offset(usize),
    Id(ObjectId),
}

/// Type (3 bits) and size (4 bits, then 7 bits per continuation byte).
fn entry_header(pack: &[u8], start: usize) -> Result<(u8, usize, usize), PackStop> {
    let mut pos = start;
    let first = *pack.get(pos).ok_or(PackStop::Truncated)?;
    pos += 1;
    let kind = (first >> 4) & 0x07;
    let mut size = usize::from(first & 0x0f);
    let mut shift = 4;
    let mut byte = first;
    while byte & 0x80 != 0 {
        byte = *pack.get(pos).ok_or(PackStop::Truncated)?;
        pos += 1;
        if shift > 56 {
            return Err(PackStop::Corrupt);
        }
        size |= usize::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Ok((kind, size, pos))
}

/// The OFS_DELTA distance back to the base: big-endian base-128 with an added 1 per byte.
fn ofs_base(pack: &[u8], mut pos: usize) -> Result<(usize, usize), PackStop> {
    let mut byte = *pack.get(pos).ok_or(PackStop::Truncated)?;
    pos += 1;
    let mut back = usize::from(byte & 0x7f);
    while byte & 0x80 != 0 {
        byte = *pack.get(pos).ok_or(PackStop::Truncated)?;
        pos += 1;
        back = back
            .checked_add(1)
            .and_then(|b| b.checked_mul(128))
            .ok_or(PackStop::Corrupt)?
            | usize::from(byte & 0x7f);
    }
    Ok((back, pos))
}

/// The `parent` lines of a commit's header (which ends at the first empty line).
pub(crate) fn parents(commit: &[u8], hash: HashKind) -> Vec<ObjectId> {
    commit
        .split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix(b"parent "))
        .filter_map(|hex| ObjectId::from_hex(hex, hash))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_only_from_the_header() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let commit =
            format!("tree {c}\nparent {a}\nparent {b}\nauthor x <x> 0 +0000\n\nmsg\nparent {c}\n");
        let p = parents(commit.as_bytes(), HashKind::Sha1);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].to_hex(), a);
        assert_eq!(p[1].to_hex(), b);
    }

    #[test]
    fn headers_and_offsets_decode_gits_varints() {
        // type 1 (commit), size 0x5 | (0x12 << 4)
        let (kind, size, next) = entry_header(&[0x95, 0x12], 0).unwrap();
        assert_eq!((kind, size, next), (1, 5 | (0x12 << 4), 2));
        // 0x81 0x00: ((1 + 1) << 7) | 0 = 256
        assert_eq!(ofs_base(&[0x81, 0x00], 0).unwrap(), (256, 2));
        assert_eq!(ofs_base(&[0x05], 0).unwrap(), (5, 1));
        assert_eq!(entry_header(&[0x95], 0), Err(PackStop::Truncated));
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn pack(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut p = b"PACK\0\0\0\x02".to_vec();
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            p.extend_from_slice(e);
        }
        p
    }

    /// A one-byte header (sizes under 16) for an entry of `kind`.
    fn entry(kind: u8, size: usize, rest: &[u8]) -> Vec<u8> {
        assert!(size < 16);
        let mut e = vec![(kind << 4) | size as u8];
        e.extend_from_slice(rest);
        e
    }

    #[test]
    fn a_commit_entry_is_hashed_and_its_parents_read() {
        let parent = "a".repeat(40);
        let body = format!("tree {}\nparent {parent}\n\nm\n", "b".repeat(40));
        let data = zlib(body.as_bytes());
        let mut e = vec![0x90 | (body.len() & 0x0f) as u8, (body.len() >> 4) as u8];
        e.extend_from_slice(&data);
        let (found, stop) = scan(&pack(&[e]), HashKind::Sha1, &PackLimits::default());
        assert_eq!(stop, PackStop::Complete);
        let id = HashKind::Sha1.object_id("commit", body.as_bytes());
        assert_eq!(found.parents[&id][0].to_hex(), parent);
    }

    #[test]
    fn a_delta_against_a_base_outside_the_pack_stays_unknown() {
        // REF_DELTA to an object the server has (a thin pack): nothing to rebuild it from.
        let delta = [3u8, 3, 3, b'a', b'b', b'c'];
        let mut rest = vec![0x11; 20];
        rest.extend_from_slice(&zlib(&delta));
        let e = entry(REF_DELTA, delta.len(), &rest);
        let (found, stop) = scan(&pack(&[e]), HashKind::Sha1, &PackLimits::default());
        assert_eq!(stop, PackStop::Complete);
        assert_eq!(found.unresolved_deltas, 1);
        assert!(found.parents.is_empty());
    }

    #[test]
    fn inflating_more_than_declared_or_an_unknown_type_is_corrupt() {
        let e = entry(BLOB, 2, &zlib(b"abc"));
        assert_eq!(
            scan(&pack(&[e]), HashKind::Sha1, &PackLimits::default()).1,
            PackStop::Corrupt
        );
        let e = entry(5, 1, &zlib(b"a"));
        assert_eq!(
            scan(&pack(&[e]), HashKind::Sha1, &PackLimits::default()).1,
            PackStop::Corrupt
        );
    }

    #[test]
    fn a_bad_signature_or_version_is_corrupt_and_an_empty_body_has_no_pack() {
        let limits = PackLimits::default();
        let (_, stop) = scan(b"PACX\0\0\0\x02\0\0\0\0", HashKind::Sha1, &limits);
        assert_eq!(stop, PackStop::Corrupt);
        let (_, stop) = scan(b"PACK\0\0\0\x09\0\0\0\0", HashKind::Sha1, &limits);
        assert_eq!(stop, PackStop::Corrupt);
        assert_eq!(scan(b"", HashKind::Sha1, &limits).1, PackStop::NoPack);
        assert_eq!(
            scan(b"PACK", HashKind::Sha1, &limits).1,
            PackStop::Truncated
        );
    }
}
