//! AES-256-GCM sealing with a fresh random nonce per call.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::master_key::MasterKey;

pub const TAG_LEN: usize = 16;

/// Nonce and ciphertext-with-tag of one sealed value.
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// The ways opening can fail, before the caller attaches the name of what it was opening.
#[derive(Debug)]
pub struct OpenFailed;

/// Seals `plaintext`; `aad` is authenticated but not stored, so the opener must rebuild it.
pub fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
    let aead = key.aead()?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Crypto("random nonce"))?;
    // Sized up front so the buffer never reallocates and leaves plaintext copies behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buf.extend_from_slice(plaintext);
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut *buf,
    )
    .map_err(|_| VaultError::Crypto("aes-256-gcm seal"))?;
    Ok(Sealed {
        nonce,
        ciphertext: buf.to_vec(),
    })
}

/// Opens a sealed value into a zeroizing buffer. Any tampering with nonce, ciphertext, tag or
/// associated data yields `OpenFailed`.
pub fn open(
    key: &MasterKey,
    aad: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    let aead = key.aead().map_err(|_| OpenFailed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenFailed)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = aead
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| OpenFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// `nonce || ciphertext` for single-blob metadata values (key-check, manifest).
pub fn to_blob(sealed: &Sealed) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.ciphertext.len());
    out.extend_from_slice(&sealed.nonce);
    out.extend_from_slice(&sealed.ciphertext);
    out
}

pub fn open_blob(
    key: &MasterKey,
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenFailed);
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    open(key, aad, nonce, ct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_uses_fresh_nonces() {
        let key = MasterKey::generate().unwrap();
        let a = seal(&key, b"aad", b"hello").unwrap();
        let b = seal(&key, b"aad", b"hello").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(
            &*open(&key, b"aad", &a.nonce, &a.ciphertext).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn wrong_aad_or_key_or_flipped_bit_fails() {
        let key = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let s = seal(&key, b"name=a", b"v").unwrap();
        assert!(open(&key, b"name=b", &s.nonce, &s.ciphertext).is_err());
        assert!(open(&other, b"name=a", &s.nonce, &s.ciphertext).is_err());
        let mut flipped = s.ciphertext.clone();
        flipped[0] ^= 1;
        assert!(open(&key, b"name=a", &s.nonce, &flipped).is_err());
        assert!(open(&key, b"name=a", &s.nonce, &s.ciphertext[..3]).is_err());
    }
}
