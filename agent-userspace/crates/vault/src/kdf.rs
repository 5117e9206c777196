//! Passphrase stretching with argon2id; parameters and salt are stored in the vault database.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::master_key::KEY_LEN;

pub const SALT_LEN: usize = 16;

/// argon2id cost parameters plus the salt; stored as JSON under `vault_meta["kdf"]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    /// Memory cost in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// Hex-encoded random salt.
    pub salt: String,
}

const ALGORITHM: &str = "argon2id-v19";

impl KdfParams {
    /// RFC 9106's second recommended option (64 MiB, 3 passes) with a single lane, since the
    /// `argon2` crate computes lanes sequentially anyway. Costs ~0.1-0.3 s once per daemon start.
    pub fn recommended() -> Result<KdfParams> {
        KdfParams::with_costs(64 * 1024, 3, 1)
    }

    /// Fresh random salt with the given costs (tests use small costs to stay fast).
    pub fn with_costs(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<KdfParams> {
        let mut salt = [0u8; SALT_LEN];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| VaultError::Crypto("random salt"))?;
        Ok(KdfParams {
            algorithm: ALGORITHM.to_owned(),
            m_cost,
            t_cost,
            p_cost,
            salt: hex::encode(salt),
        })
    }

    pub fn derive(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        if passphrase.is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        if self.algorithm != ALGORITHM {
            return Err(VaultError::Kdf(format!(
                "field algorithm: unsupported {:?}",
                self.algorithm
            )));
        }
        let salt =
            hex::decode(&self.salt).map_err(|e| VaultError::Kdf(format!("field salt: {e}")))?;
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| VaultError::Kdf(format!("cost parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase, &salt, out.as_mut())
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        Ok(out)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<KdfParams> {
        serde_json::from_slice(bytes).map_err(|e| VaultError::MetadataMalformed {
            what: "kdf parameters",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_passphrase_and_salt_give_same_key_other_salt_differs() {
        let p = KdfParams::with_costs(256, 1, 1).unwrap();
        let q = KdfParams::with_costs(256, 1, 1).unwrap();
        assert_eq!(
            *p.derive(b"hunter2").unwrap(),
            *p.derive(b"hunter2").unwrap()
        );
        assert_ne!(
            *p.derive(b"hunter2").unwrap(),
            *q.derive(b"hunter2").unwrap()
        );
        assert_ne!(
            *p.derive(b"hunter2").unwrap(),
            *p.derive(b"hunter3").unwrap()
        );
    }

    #[test]
    fn stored_json_round_trips_and_bad_fields_are_named() {
        let p = KdfParams::with_costs(256, 1, 1).unwrap();
        let back = KdfParams::from_json(&p.to_json()).unwrap();
        assert!(back == p);
        let mut bad = p.clone();
        bad.salt = "zz".into();
        assert!(bad.derive(b"x").unwrap_err().to_string().contains("salt"));
        assert!(p.derive(b"").is_err());
    }
}
