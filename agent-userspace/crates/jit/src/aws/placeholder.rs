//! Placeholder AWS keys: one set per agent instance, handed to the agent in
//! the usual `AWS_*` variables so boto3, the AWS CLI and the SDKs sign with
//! them. AWS has never heard of them; Cordon checks the signature with the
//! placeholder secret and re-signs with the real session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::instance::InstanceId;

/// Every placeholder key id starts so; a key id with this prefix that is
/// not the instance's own is another instance's placeholder.
pub const PLACEHOLDER_KEY_PREFIX: &str = "ASIACRDN";
const SESSION_TOKEN_PREFIX: &str = "cordon-placeholder-";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// One instance's placeholder credentials.
pub struct AwsPlaceholder {
    pub instance: InstanceId,
    /// `ASIACRDN` and 12 random base-32 characters: 20 characters, the
    /// shape SDKs expect.
    pub access_key_id: String,
    secret_access_key: Zeroizing<String>,
    pub session_token: String,
}

impl std::fmt::Debug for AwsPlaceholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsPlaceholder")
            .field("instance", &self.instance)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// Bytes a placeholder is made of: 12 for the key id, 30 for the secret,
/// 24 for the session token.
const MATERIAL: usize = 12 + 30 + 24;

impl AwsPlaceholder {
    /// Fresh random placeholder keys.
    pub fn generate(instance: InstanceId) -> Result<AwsPlaceholder, RandomError> {
        let rng = SystemRandom::new();
        let mut bytes = Zeroizing::new([0u8; MATERIAL]);
        rng.fill(&mut bytes[..]).map_err(|_| RandomError)?;
        Ok(AwsPlaceholder::from_material(instance, &bytes))
    }

    /// Placeholder keys derived from `key` and the instance (HMAC-SHA256),
    /// so a daemon that restarts with the same key gives running instances
    /// the keys they already hold.
    pub fn derive(key: &hmac::Key, instance: InstanceId) -> AwsPlaceholder {
        let mut bytes = Zeroizing::new([0u8; MATERIAL]);
        for (block, chunk) in bytes.chunks_mut(32).enumerate() {
            let mut ctx = hmac::Context::with_key(key);
            ctx.update(b"cordon-aws-placeholder/v1\0");
            ctx.update(&[block as u8]);
            for part in [instance.agent.as_bytes(), instance.instance.as_bytes()] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
            let tag = ctx.sign();
            chunk.copy_from_slice(&tag.as_ref()[..chunk.len()]);
        }
        AwsPlaceholder::from_material(instance, &bytes)
    }

    fn from_material(instance: InstanceId, bytes: &[u8; MATERIAL]) -> AwsPlaceholder {
        let key: String = bytes[..12]
            .iter()
            .map(|b| BASE32[(b & 31) as usize] as char)
            .collect();
        AwsPlaceholder {
            instance,
            access_key_id: format!("{PLACEHOLDER_KEY_PREFIX}{key}"),
            secret_access_key: Zeroizing::new(hex::encode(&bytes[12..42])),
            session_token: format!("{SESSION_TOKEN_PREFIX}{}", hex::encode(&bytes[42..])),
        }
    }

    /// Built from known parts (tests, and a daemon restoring an instance).
    pub fn from_parts(
        instance: InstanceId,
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
    ) -> AwsPlaceholder {
        AwsPlaceholder {
            instance,
            access_key_id,
            secret_access_key: Zeroizing::new(secret_access_key),
            session_token,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret_access_key
    }

    /// The variables `cordon run` sets for the agent. The values are
    /// placeholders: worthless to AWS, and only good through Cordon for
    /// this one instance.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.to_string(),
            ),
            ("AWS_SESSION_TOKEN".into(), self.session_token.clone()),
        ]
    }
}

/// Whether `access_key_id` has the shape of a Cordon placeholder.
pub fn is_placeholder_key(access_key_id: &str) -> bool {
    access_key_id.starts_with(PLACEHOLDER_KEY_PREFIX)
}

/// The placeholders of the running instances.
#[derive(Default)]
pub struct AwsPlaceholders {
    inner: Mutex<Registry>,
    /// When set, placeholders are derived from it instead of drawn at
    /// random (see [`AwsPlaceholders::derived`]).
    key: Option<hmac::Key>,
}

impl std::fmt::Debug for AwsPlaceholders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsPlaceholders")
            .field("derived", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Registry {
    by_instance: HashMap<InstanceId, Arc<AwsPlaceholder>>,
    by_key: HashMap<String, InstanceId>,
}

impl AwsPlaceholders {
    /// Placeholders derived from `key` (32 random bytes the daemon keeps,
    /// e.g. in the vault): after a restart, issuing again for an instance
    /// that is still running gives it back the keys it holds. Instance ids
    /// are random, so a new instance gets new keys; an id reused by chance
    /// (1 in 2^32 per agent) would get its predecessor's.
    pub fn derived(key: &[u8; 32]) -> AwsPlaceholders {
        AwsPlaceholders {
            inner: Mutex::default(),
            key: Some(hmac::Key::new(hmac::HMAC_SHA256, key)),
        }
    }

    /// The instance's placeholder, made on first use.
    pub fn issue(&self, instance: &InstanceId) -> Result<Arc<AwsPlaceholder>, RandomError> {
        let mut reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = reg.by_instance.get(instance) {
            return Ok(p.clone());
        }
        let p = Arc::new(match &self.key {
            Some(key) => AwsPlaceholder::derive(key, instance.clone()),
            None => AwsPlaceholder::generate(instance.clone())?,
        });
        reg.by_key.insert(p.access_key_id.clone(), instance.clone());
        reg.by_instance.insert(instance.clone(), p.clone());
        Ok(p)
    }

    pub fn for_instance(&self, instance: &InstanceId) -> Option<Arc<AwsPlaceholder>> {
        let reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        reg.by_instance.get(instance).cloned()
    }

    /// The instance a placeholder key was issued to, for the audit record
    /// of a replayed placeholder.
    pub fn owner_of(&self, access_key_id: &str) -> Option<InstanceId> {
        let reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        reg.by_key.get(access_key_id).cloned()
    }

    /// Forgets the instance's placeholder: it dies with the instance.
    pub fn revoke(&self, instance: &InstanceId) {
        let mut reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = reg.by_instance.remove(instance) {
            reg.by_key.remove(&p.access_key_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_gets_its_own_placeholder_and_loses_it_on_revoke() {
        let reg = AwsPlaceholders::default();
        let a = InstanceId::new("bot", "1");
        let b = InstanceId::new("bot", "2");
        let pa = reg.issue(&a).unwrap();
        let pb = reg.issue(&b).unwrap();
        assert_ne!(pa.access_key_id, pb.access_key_id);
        assert_ne!(pa.secret(), pb.secret());
        assert_eq!(reg.issue(&a).unwrap().access_key_id, pa.access_key_id);
        assert_eq!(pa.access_key_id.len(), 20);
        assert!(is_placeholder_key(&pa.access_key_id));
        assert_eq!(reg.owner_of(&pb.access_key_id), Some(b.clone()));
        reg.revoke(&b);
        assert!(reg.owner_of(&pb.access_key_id).is_none());
        assert!(reg.for_instance(&b).is_none());
        assert!(reg.for_instance(&a).is_some());
    }

    #[test]
    fn derived_placeholders_survive_a_restart_and_differ_per_instance() {
        let key = [7u8; 32];
        let a = InstanceId::new("bot", "0badf00d");
        let before = AwsPlaceholders::derived(&key).issue(&a).unwrap();
        let after = AwsPlaceholders::derived(&key).issue(&a).unwrap();
        assert_eq!(before.access_key_id, after.access_key_id);
        assert_eq!(before.secret(), after.secret());
        assert_eq!(before.session_token, after.session_token);
        let b = InstanceId::new("bot", "0badf00e");
        let other = AwsPlaceholders::derived(&key).issue(&b).unwrap();
        assert_ne!(other.access_key_id, before.access_key_id);
        assert_ne!(other.secret(), before.secret());
        let other_key = AwsPlaceholders::derived(&[8u8; 32]).issue(&a).unwrap();
        assert_ne!(other_key.secret(), before.secret());
        assert!(is_placeholder_key(&before.access_key_id));
        assert_eq!(before.access_key_id.len(), 20);
        // The agent/instance boundary is unambiguous.
        let shifted = AwsPlaceholders::derived(&key)
            .issue(&InstanceId::new("bot0", "badf00d"))
            .unwrap();
        assert_ne!(shifted.secret(), before.secret());
    }

    #[test]
    fn env_names_the_standard_variables_and_debug_hides_the_secret() {
        let p = AwsPlaceholder::generate(InstanceId::new("bot", "1")).unwrap();
        let env = p.env();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN"
            ]
        );
        assert!(!format!("{p:?}").contains(p.secret()));
    }
}
