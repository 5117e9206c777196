//! Cordon's local certificate authority: created once per host, loaded on
//! every later start, and used to mint the leaves the proxy presents.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::TlsError;
use crate::leaf_cache::{LeafCache, LeafOptions};
use crate::mint::{LeafName, generate_ca};
use crate::secure_fs::{ensure_dir, read_private, read_public, write_atomic};
use crate::server::build_server_config;

/// File name of the CA certificate inside the CA directory (mode 0644).
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside the CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// The local CA plus everything derived from it (leaf cache, agent-facing
/// server config). Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct CertAuthority {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) cert_der: CertificateDer<'static>,
    pub(crate) cert_pem: String,
    pub(crate) leaves: Arc<LeafCache>,
    pub(crate) server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for CertAuthority {
    // The key never appears; the directory is enough to identify the CA.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Loads `dir/ca.pem` + `dir/ca.key`, or creates both when neither
    /// exists. Uses default [`LeafOptions`].
    pub fn load_or_create(dir: &Path) -> Result<CertAuthority, TlsError> {
        Self::load_or_create_with(dir, LeafOptions::default())
    }

    pub fn load_or_create_with(
        dir: &Path,
        options: LeafOptions,
    ) -> Result<CertAuthority, TlsError> {
        ensure_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let (cert_der, cert_pem, issuer) = match (exists(&cert_path)?, exists(&key_path)?) {
            (false, false) => create(&cert_path, &key_path)?,
            (true, true) => load(&cert_path, &key_path)?,
            (true, false) => {
                return Err(TlsError::CaIncomplete {
                    present: cert_path,
                    missing: key_path,
                });
            }
            (false, true) => {
                return Err(TlsError::CaIncomplete {
                    present: key_path,
                    missing: cert_path,
                });
            }
        };
        let leaves = Arc::new(LeafCache::new(issuer, &options)?);
        let server_config = build_server_config(Arc::clone(&leaves))?;
        Ok(CertAuthority {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                cert_der,
                cert_pem,
                leaves,
                server_config,
            }),
        })
    }

    /// The CA certificate, PEM encoded (what agents must trust).
    pub fn ca_pem(&self) -> &str {
        &self.inner.cert_pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.inner.cert_der
    }

    /// Path of the CA certificate file on disk.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.inner.dir.join(CA_CERT_FILE)
    }

    /// The leaf (chain + key) presented for `name`, a DNS name or IP
    /// literal; minted on first use, then served from the cache.
    pub fn leaf_for(&self, name: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        self.inner.leaves.get(&LeafName::parse(name)?)
    }

    /// The same CA with a leaf cache of its own (one per proxy core). The
    /// agent-facing config is a copy sharing the session ticket keys and
    /// the session cache, so a session begun on one core resumes on any.
    pub fn shard(&self) -> CertAuthority {
        let leaves = Arc::new(self.inner.leaves.shard());
        let server_config = crate::server::with_leaves(&self.inner.server_config, &leaves);
        CertAuthority {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                cert_der: self.inner.cert_der.clone(),
                cert_pem: self.inner.cert_pem.clone(),
                leaves,
                server_config,
            }),
        }
    }

    /// How many leaves have been minted since this CA was loaded, by every
    /// shard together (metrics).
    pub fn leaves_generated(&self) -> u64 {
        self.inner.leaves.generated()
    }
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    // symlink_metadata: a dangling symlink counts as present, so it is
    // reported by the loader instead of silently replaced.
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(TlsError::io("inspecting", path, e)),
    }
}

type Loaded = (CertificateDer<'static>, String, Issuer<'static, KeyPair>);

fn create(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let ca = generate_ca()?;
    // Key first: if we die between the two writes the next start reports
    // an incomplete CA rather than trusting a certificate with no key.
    write_atomic(key_path, ca.key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(cert_path, ca.cert_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "created Cordon local CA");
    Ok((ca.cert_der, ca.cert_pem, Issuer::new(ca.params, ca.key)))
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let key_bytes = read_private(key_path)?;
    let invalid_key = |reason: String| TlsError::CaInvalid {
        path: key_path.to_owned(),
        reason,
    };
    let key_pem =
        std::str::from_utf8(&key_bytes).map_err(|_| invalid_key("not a UTF-8 PEM file".into()))?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| invalid_key(e.to_string()))?;

    let cert_bytes = read_public(cert_path)?;
    let invalid_cert = |reason: String| TlsError::CaInvalid {
        path: cert_path.to_owned(),
        reason,
    };
    let cert_der = CertificateDer::from_pem_slice(&cert_bytes)
        .map_err(|e| invalid_cert(format!("no PEM certificate: {e}")))?;
    check_ca_cert(&cert_der, &key).map_err(invalid_cert)?;
    let cert_pem =
        String::from_utf8(cert_bytes).map_err(|_| invalid_cert("not a UTF-8 PEM file".into()))?;
    let issuer =
        Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| invalid_cert(e.to_string()))?;
    Ok((cert_der, cert_pem, issuer))
}

/// A CA we cannot sign for, or that clients would reject, is refused at
/// start instead of failing every interception later.
fn check_ca_cert(der: &CertificateDer<'_>, key: &KeyPair) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unparseable certificate: {e}"))?;
    if !cert.is_ca() {
        return Err("certificate is not a CA (basicConstraints CA:FALSE or missing)".into());
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(format!(
            "certificate does not match the key in {CA_KEY_FILE}"
        ));
    }
    let validity = cert.validity();
    if !validity.is_valid() {
        return Err(format!(
            "certificate is not valid now (valid {} to {}); remove {CA_CERT_FILE} and {CA_KEY_FILE} to create a new CA",
            validity.not_before, validity.not_after
        ));
    }
    if validity
        .time_to_expiration()
        .is_some_and(|left| left.unsigned_abs() < EXPIRY_WARNING)
    {
        tracing::warn!(not_after = %validity.not_after, "Cordon CA expires within 30 days");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_mints_into_its_own_cache_and_shares_resumption_state() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::load_or_create(dir.path()).unwrap();
        let shard = ca.shard();
        let here = ca.leaf_for("api.example.com").unwrap();
        assert!(Arc::ptr_eq(&here, &ca.leaf_for("api.example.com").unwrap()));
        let there = shard.leaf_for("api.example.com").unwrap();
        assert!(
            !Arc::ptr_eq(&here, &there),
            "the shard reused the other cache"
        );
        // Counted once per mint, across shards.
        assert_eq!(ca.leaves_generated(), 2);
        assert_eq!(shard.leaves_generated(), 2);
        let (a, b) = (ca.server_config(), shard.server_config());
        assert!(Arc::ptr_eq(&a.ticketer, &b.ticketer));
        assert!(Arc::ptr_eq(&a.session_storage, &b.session_storage));
        assert_eq!(shard.ca_pem(), ca.ca_pem());
    }
}
