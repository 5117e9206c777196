//! Certificate parameters and signing: the Cordon CA itself and the
//! short-lived leaves it issues per intercepted server name.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::error::TlsError;

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Leaves and the CA start slightly in the past so an agent whose clock lags
/// the host's a little still accepts them.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A server name a leaf is minted for, normalised so that `API.github.com.`
/// and `api.github.com` share one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum LeafName {
    Dns(String),
    Ip(IpAddr),
}

impl LeafName {
    pub(crate) fn parse(raw: &str) -> Result<Self, TlsError> {
        let trimmed = raw.trim_end_matches('.').to_ascii_lowercase();
        let unbracketed = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(&trimmed);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(LeafName::Ip(ip));
        }
        if trimmed.is_empty() || DnsName::try_from(trimmed.as_str()).is_err() {
            return Err(TlsError::InvalidName {
                name: raw.to_owned(),
            });
        }
        Ok(LeafName::Dns(trimmed))
    }

    pub(crate) fn key(&self) -> String {
        match self {
            LeafName::Dns(d) => d.clone(),
            LeafName::Ip(ip) => ip.to_string(),
        }
    }

    fn san(&self) -> Result<SanType, TlsError> {
        Ok(match self {
            LeafName::Dns(d) => {
                SanType::DnsName(d.clone().try_into().map_err(|source| TlsError::Mint {
                    name: d.clone(),
                    source,
                })?)
            }
            LeafName::Ip(ip) => SanType::IpAddress(*ip),
        })
    }
}

/// The system hostname for the CA's common name, so an operator looking at
/// a certificate chain can tell which machine's Cordon minted it.
fn hostname() -> String {
    match nix::unistd::gethostname() {
        Ok(h) => h.to_string_lossy().into_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "gethostname failed; CA common name uses \"localhost\"");
            "localhost".to_owned()
        }
    }
}

pub(crate) fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("Cordon Local CA {}", hostname()),
    );
    dn.push(DnType::OrganizationName, "Cordon");
    let now = OffsetDateTime::now_utc();
    // A CA re-created on the same host gets a distinct subject, so clients
    // never confuse it with the one it replaced when matching issuers.
    dn.push(
        DnType::OrganizationalUnitName,
        format!("created {}", now.unix_timestamp_nanos()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + CA_VALIDITY;
    params
}

/// A freshly generated CA: certificate DER, its PEM, and its key.
pub(crate) struct NewCa {
    pub(crate) cert_der: CertificateDer<'static>,
    pub(crate) cert_pem: String,
    pub(crate) key: KeyPair,
    pub(crate) params: CertificateParams,
}

pub(crate) fn generate_ca() -> Result<NewCa, TlsError> {
    let key = KeyPair::generate().map_err(TlsError::CaGenerate)?;
    let params = ca_params();
    let cert = params.self_signed(&key).map_err(TlsError::CaGenerate)?;
    Ok(NewCa {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key,
        params,
    })
}

/// Mints a leaf for `name` with its own fresh P-256 key, signed by `issuer`.
pub(crate) fn mint_leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &LeafName,
    lifetime: Duration,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let mint_err = |source| TlsError::Mint {
        name: name.key(),
        source,
    };
    let leaf_key = KeyPair::generate().map_err(mint_err)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.key());
    params.distinguished_name = dn;
    params.subject_alt_names = vec![name.san()?];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + lifetime;

    let cert = params.signed_by(&leaf_key, issuer).map_err(mint_err)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let signing_key =
        rustls::crypto::aws_lc_rs::sign::any_ecdsa_type(&key_der).map_err(TlsError::Config)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_ips_recognised() {
        assert_eq!(
            LeafName::parse("API.GitHub.com.").unwrap(),
            LeafName::Dns("api.github.com".into())
        );
        assert_eq!(
            LeafName::parse("10.1.2.3").unwrap(),
            LeafName::Ip("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            LeafName::parse("[::1]").unwrap(),
            LeafName::Ip("::1".parse().unwrap())
        );
        assert!(LeafName::parse("").is_err());
        assert!(LeafName::parse("bad name!").is_err());
    }
}
