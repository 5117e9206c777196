//! Binary encoding of one sealed secret record (the value in `vault_secrets`).
//!
//! ```text
//! "CVR1" | version u64 BE | created_ms i64 BE | updated_ms i64 BE
//!        | kind_len u16 BE | kind (UTF-8) | nonce [12] | ciphertext+tag (rest)
//! ```
//! Everything before the nonce (the header) is bound as associated data together with the
//! record's name, so no header field can be edited and no record can be moved to another name
//! without the tag check failing.

use aws_lc_rs::aead::NONCE_LEN;
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::master_key::MasterKey;
use crate::seal;

const MAGIC: &[u8; 4] = b"CVR1";
const AAD_DOMAIN: &[u8] = b"cordon-vault/secret/v1\0";

/// The non-secret part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub version: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub kind: String,
}

pub struct Record {
    pub header: RecordHeader,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

impl RecordHeader {
    fn encode(&self) -> Vec<u8> {
        let kind = self.kind.as_bytes();
        let mut out = Vec::with_capacity(4 + 8 * 3 + 2 + kind.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&self.updated_ms.to_be_bytes());
        // Kinds are validated to at most 64 bytes, so the length always fits.
        out.extend_from_slice(&(kind.len() as u16).to_be_bytes());
        out.extend_from_slice(kind);
        out
    }

    fn aad(&self, name: &str) -> Vec<u8> {
        let header = self.encode();
        let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 2 + name.len() + header.len());
        aad.extend_from_slice(AAD_DOMAIN);
        aad.extend_from_slice(&(name.len() as u16).to_be_bytes());
        aad.extend_from_slice(name.as_bytes());
        aad.extend_from_slice(&header);
        aad
    }
}

impl Record {
    pub fn seal(
        name: &str,
        header: RecordHeader,
        key: &MasterKey,
        plaintext: &[u8],
    ) -> Result<Record> {
        let sealed = seal::seal(key, &header.aad(name), plaintext)?;
        Ok(Record {
            header,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        })
    }

    pub fn open(&self, name: &str, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>> {
        seal::open(key, &self.header.aad(name), &self.nonce, &self.ciphertext).map_err(|_| {
            VaultError::RecordAuthentication {
                name: name.to_owned(),
            }
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header.encode();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    pub fn decode(name: &str, bytes: &[u8]) -> Result<Record> {
        let malformed = |reason: &str| VaultError::RecordMalformed {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let mut r = Reader(bytes);
        if r.take(4).ok_or_else(|| malformed("truncated magic"))? != MAGIC {
            return Err(malformed("unknown record format (bad magic)"));
        }
        let version = r.u64().ok_or_else(|| malformed("truncated version"))?;
        let created_ms = r.u64().ok_or_else(|| malformed("truncated created"))? as i64;
        let updated_ms = r.u64().ok_or_else(|| malformed("truncated updated"))? as i64;
        let kind_len = r.u16().ok_or_else(|| malformed("truncated kind length"))?;
        let kind = r
            .take(kind_len.into())
            .ok_or_else(|| malformed("truncated kind"))?;
        let kind = std::str::from_utf8(kind)
            .map_err(|_| malformed("kind is not UTF-8"))?
            .to_owned();
        let nonce = r
            .take(NONCE_LEN)
            .ok_or_else(|| malformed("truncated nonce"))?;
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        Ok(Record {
            header: RecordHeader {
                version,
                created_ms,
                updated_ms,
                kind,
            },
            nonce: n,
            // A truncated ciphertext is left for the tag check to reject by name.
            ciphertext: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RecordHeader {
        RecordHeader {
            version: 3,
            created_ms: 1,
            updated_ms: 2,
            kind: "token".into(),
        }
    }

    #[test]
    fn encode_decode_open_round_trip() {
        let key = MasterKey::generate().unwrap();
        let rec = Record::seal("gh", header(), &key, b"ghp_x").unwrap();
        let back = Record::decode("gh", &rec.encode()).unwrap();
        assert_eq!(back.header, header());
        assert_eq!(&*back.open("gh", &key).unwrap(), b"ghp_x");
    }

    #[test]
    fn record_moved_to_another_name_fails_authentication() {
        let key = MasterKey::generate().unwrap();
        let rec = Record::seal("gh", header(), &key, b"ghp_x").unwrap();
        let moved = Record::decode("stripe", &rec.encode()).unwrap();
        let err = moved.open("stripe", &key).unwrap_err().to_string();
        assert_eq!(err, "vault record \"stripe\" failed authentication");
    }

    #[test]
    fn edited_header_fields_fail_authentication() {
        let key = MasterKey::generate().unwrap();
        let rec = Record::seal("gh", header(), &key, b"ghp_x").unwrap();
        let mut bytes = rec.encode();
        bytes[11] ^= 1; // low byte of version
        assert!(
            Record::decode("gh", &bytes)
                .unwrap()
                .open("gh", &key)
                .is_err()
        );
        let mut bytes = rec.encode();
        bytes[19] ^= 1; // created
        assert!(
            Record::decode("gh", &bytes)
                .unwrap()
                .open("gh", &key)
                .is_err()
        );
    }

    #[test]
    fn truncated_header_is_malformed_and_named() {
        let key = MasterKey::generate().unwrap();
        let rec = Record::seal("gh", header(), &key, b"ghp_x").unwrap();
        let err = Record::decode("gh", &rec.encode()[..10])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("\"gh\"") && err.contains("truncated"), "{err}");
    }
}
