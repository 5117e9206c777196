//! Throw-away CAs and server certificates for tests: the end-to-end suite
//! uses them to stand up servers impersonating real APIs (api.github.com
//! ...) that Cordon's upstream side is told to trust via `--upstream-ca`.
//! Only compiled with the `testing` feature.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::TlsError;
use crate::secure_fs::write_atomic;

/// A test certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

/// A server certificate with its key, issued by a [`TestCa`] or self-signed.
pub struct TestServerCert {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for TestServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServerCert").finish_non_exhaustive()
    }
}

fn gen_err(source: rcgen::Error) -> TlsError {
    TlsError::CaGenerate(source)
}

impl TestCa {
    pub fn new(common_name: &str) -> Result<TestCa, TlsError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(TestCa {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Writes the CA certificate to `dir/test-ca.pem` and returns the path.
    pub fn write_pem(&self, dir: &Path) -> Result<PathBuf, TlsError> {
        let path = dir.join("test-ca.pem");
        write_atomic(&path, self.cert_pem.as_bytes(), 0o644)?;
        Ok(path)
    }

    /// A server certificate for `names` (DNS names or IP literals).
    pub fn server_cert(&self, names: &[&str]) -> Result<TestServerCert, TlsError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = server_params(names)?
            .signed_by(&key, &self.issuer)
            .map_err(gen_err)?;
        Ok(TestServerCert::from_parts(
            cert.der().clone(),
            cert.pem(),
            &key,
        ))
    }
}

/// A self-signed server certificate that no trust store contains: the
/// negative case for upstream verification.
pub fn self_signed_server_cert(names: &[&str]) -> Result<TestServerCert, TlsError> {
    let key = KeyPair::generate().map_err(gen_err)?;
    let cert = server_params(names)?.self_signed(&key).map_err(gen_err)?;
    Ok(TestServerCert::from_parts(
        cert.der().clone(),
        cert.pem(),
        &key,
    ))
}

fn server_params(names: &[&str]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => (*name)
                .to_owned()
                .try_into()
                .map(SanType::DnsName)
                .map_err(gen_err),
        })
        .collect::<Result<_, _>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

impl TestServerCert {
    fn from_parts(cert_der: CertificateDer<'static>, cert_pem: String, key: &KeyPair) -> Self {
        TestServerCert {
            cert_pem,
            key_pem: key.serialize_pem(),
            cert_der,
            key_der: key.serialize_der(),
        }
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Writes `dir/<stem>.pem` (0644) and `dir/<stem>.key` (0600).
    pub fn write_pems(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write_atomic(&cert, self.cert_pem.as_bytes(), 0o644)?;
        write_atomic(&key, self.key_pem.as_bytes(), 0o600)?;
        Ok((cert, key))
    }

    /// A rustls server config presenting this certificate and offering
    /// `alpn` (e.g. `&[b"h2", b"http/1.1"]`), for fake upstream servers.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .map_err(TlsError::Config)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}
