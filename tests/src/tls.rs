//! A throwaway certificate authority for the test "internet", and server certificates from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, IoContext, Result};

/// Names the test upstreams answer for unless a test asks for others.
pub const DEFAULT_TLS_NAMES: &[&str] = &[
    "api.github.com",
    "github.com",
    "api.stripe.com",
    "api.openai.com",
    "api.anthropic.com",
    "slack.com",
    "allowed.test",
    "denied.test",
    "git.test",
];

/// ALPN list offered by the HTTPS test servers, most preferred first.
pub const SERVER_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A CA whose certificate is written to `<tempdir>/test-ca.pem` for curl, git and the daemon.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("pem_path", &self.pem_path())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    pub fn new() -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Cordon e2e test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(tls)?;
        let cert = params.self_signed(&key).map_err(tls)?;
        let cert_pem = cert.pem();
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-ca-")
            .tempdir()
            .ctx(|| "create CA temp dir".into())?;
        let path = dir.path().join("test-ca.pem");
        std::fs::write(&path, &cert_pem).ctx(|| format!("write {}", path.display()))?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_der: cert.der().clone(),
            cert_pem,
            dir,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// PEM file of the CA certificate (for `curl --cacert`, `GIT_SSL_CAINFO`, `--upstream-ca`).
    pub fn pem_path(&self) -> PathBuf {
        self.dir.path().join("test-ca.pem")
    }

    /// Copy the CA certificate to `dest` (e.g. into a daemon's state directory).
    pub fn write_pem(&self, dest: &Path) -> Result<()> {
        std::fs::write(dest, &self.cert_pem).ctx(|| format!("write {}", dest.display()))
    }

    /// A leaf certificate (chain of one) and key valid for `names` (DNS names or IP literals).
    pub fn leaf(
        &self,
        names: &[&str],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(tls)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(tls)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(tls)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone()], key_der))
    }

    /// rustls server configuration (TLS 1.3 and 1.2, aws-lc-rs) presenting a leaf for `names`.
    pub fn server_config(
        &self,
        names: &[&str],
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>> {
        let (chain, key) = self.leaf(names)?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(tls)?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(tls)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// rustls client configuration trusting only this CA.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).map_err(tls)?;
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(tls)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn tls(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}
