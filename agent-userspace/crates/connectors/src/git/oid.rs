//! git object ids (SHA-1 or SHA-256 repositories) and computing them from object contents.

use sha1::Digest;
use std::fmt;

/// The hash a repository names its objects with (`object-format` capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha1,
    Sha256,
}

impl HashKind {
    pub(crate) fn len(self) -> usize {
        match self {
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
        }
    }

    /// The id of an object: the hash of `"<kind> <len>\0"` followed by its contents.
    pub(crate) fn object_id(self, kind: &str, data: &[u8]) -> ObjectId {
        let header = format!("{kind} {}\0", data.len());
        let bytes = match self {
            HashKind::Sha1 => {
                let mut h = sha1::Sha1::new();
                h.update(header.as_bytes());
                h.update(data);
                h.finalize().to_vec()
            }
            HashKind::Sha256 => {
                let mut h = sha2::Sha256::new();
                h.update(header.as_bytes());
                h.update(data);
                h.finalize().to_vec()
            }
        };
        ObjectId(bytes)
    }
}

/// A raw object id (20 or 32 bytes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectId(Vec<u8>);

impl ObjectId {
    /// Parse a lowercase or uppercase hex id of the length `kind` needs.
    pub fn from_hex(text: &[u8], kind: HashKind) -> Option<ObjectId> {
        if text.len() != kind.len() * 2 {
            return None;
        }
        hex::decode(text).ok().map(ObjectId)
    }

    pub(crate) fn from_raw(raw: &[u8]) -> ObjectId {
        ObjectId(raw.to_vec())
    }

    /// The all-zero id git uses for "no object" (a ref being created or deleted).
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_match_gits_for_the_empty_blob() {
        // `git hash-object -t blob /dev/null` in either object format.
        assert_eq!(
            HashKind::Sha1.object_id("blob", b"").to_hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            HashKind::Sha256.object_id("blob", b"").to_hex(),
            "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813"
        );
    }

    #[test]
    fn hex_ids_must_have_the_formats_length() {
        let hex40 = "a".repeat(40);
        assert!(ObjectId::from_hex(hex40.as_bytes(), HashKind::Sha1).is_some());
        assert!(ObjectId::from_hex(hex40.as_bytes(), HashKind::Sha256).is_none());
        assert!(ObjectId::from_hex(&[b'g'; 40], HashKind::Sha1).is_none());
        assert!(
            ObjectId::from_hex(&[b'0'; 40], HashKind::Sha1)
                .unwrap()
                .is_zero()
        );
    }
}
