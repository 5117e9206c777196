//! The 256-bit master key that seals every vault record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::kdf::KdfParams;

pub const KEY_LEN: usize = 32;

/// Where a master key came from; decides how a rotation to a new key is made durable.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Fresh random bytes from [`MasterKey::generate`], not yet stored anywhere.
    Generated,
    /// A systemd credential file (read-only to the daemon).
    SystemdCredential(PathBuf),
    /// A key file the vault manages (and rewrites on rotation).
    KeyFile(PathBuf),
    /// Derived from an operator passphrase with these argon2id parameters (salt included).
    Passphrase(KdfParams),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Generated => f.write_str("a generated key"),
            KeyOrigin::SystemdCredential(p) => write!(f, "systemd credential {}", p.display()),
            KeyOrigin::KeyFile(p) => write!(f, "key file {}", p.display()),
            KeyOrigin::Passphrase(_) => f.write_str("the passphrase"),
        }
    }
}

impl fmt::Debug for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Generated => f.write_str("Generated"),
            KeyOrigin::SystemdCredential(p) => f.debug_tuple("SystemdCredential").field(p).finish(),
            KeyOrigin::KeyFile(p) => f.debug_tuple("KeyFile").field(p).finish(),
            KeyOrigin::Passphrase(_) => f.write_str("Passphrase"),
        }
    }
}

/// A master key. The bytes are zeroed on drop and never appear in `Debug`.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    origin: KeyOrigin,
    /// For key files: the `<file>.next` key found beside it, left by an interrupted rotation.
    /// `Vault::open` decides which of the two the database was sealed with.
    pub(crate) pending_next: Option<Zeroizing<[u8; KEY_LEN]>>,
    /// The AES-256-GCM key schedule, expanded on first use and kept with the key: a credential
    /// read opens two sealed values (the manifest and the record), and expanding the schedule
    /// for each was a sixth of a read's time. It lives exactly as long as the key bytes do.
    aead: OnceLock<LessSafeKey>,
}

impl MasterKey {
    /// 32 bytes from the system CSPRNG, e.g. the target of a rotation.
    pub fn generate() -> Result<MasterKey> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| VaultError::Crypto("random key"))?;
        Ok(MasterKey::from_bytes(bytes, KeyOrigin::Generated))
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>, origin: KeyOrigin) -> MasterKey {
        MasterKey {
            bytes,
            origin,
            pending_next: None,
            aead: OnceLock::new(),
        }
    }

    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    pub(crate) fn set_origin(&mut self, origin: KeyOrigin) {
        self.origin = origin;
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The key as AES-256-GCM sealing and opening use it (see `aead`).
    pub(crate) fn aead(&self) -> Result<&LessSafeKey> {
        if let Some(key) = self.aead.get() {
            return Ok(key);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, self.bytes.as_ref())
            .map_err(|_| VaultError::Crypto("aead key"))?;
        Ok(self.aead.get_or_init(|| LessSafeKey::new(unbound)))
    }

    /// A public, non-reversible identifier of the key (HMAC-SHA256 of a fixed label keyed by
    /// the master key). Stored in the database so the right key file can be chosen after an
    /// interrupted rotation; safe to show to operators.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint_of(&self.bytes)
    }

    pub(crate) fn key_file_path(&self) -> Option<&Path> {
        match &self.origin {
            KeyOrigin::KeyFile(p) => Some(p),
            _ => None,
        }
    }
}

pub(crate) fn fingerprint_of(bytes: &[u8; KEY_LEN]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
    let tag = hmac::sign(&key, b"cordon-vault/key-fingerprint/v1");
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_origin_but_not_key_bytes() {
        let key = MasterKey::from_bytes(
            Zeroizing::new([0xAB; KEY_LEN]),
            KeyOrigin::KeyFile("/etc/cordon/vault.key".into()),
        );
        let dbg = format!("{key:?}");
        assert!(dbg.contains("vault.key"), "{dbg}");
        assert!(
            !dbg.to_lowercase().contains("ab, ") && !dbg.contains("171"),
            "{dbg}"
        );
        assert!(!dbg.contains(&hex::encode([0xAB; 4])), "{dbg}");
    }

    #[test]
    fn fingerprint_differs_per_key_and_is_stable() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_eq!(a.fingerprint(), fingerprint_of(a.bytes()));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(&a.fingerprint(), a.bytes());
    }
}
