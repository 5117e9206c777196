//! The upstream side: Cordon's own verified TLS connection to the real
//! server. Verification failures are typed so the proxy answers 502 and
//! never falls back to an unverified connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::alpn::{ALPN_H2, ALPN_HTTP1, UpstreamAlpn};
use crate::error::TlsError;
use crate::system_roots::load_system_roots;

/// Client configs for upstream connections, one per ALPN offer. Each keeps
/// an in-memory session store so reconnects to a host resume.
#[derive(Clone, Debug)]
pub struct UpstreamTls {
    h2_or_http1: Arc<ClientConfig>,
    http1_only: Arc<ClientConfig>,
}

impl UpstreamTls {
    /// Trusts the system roots plus every certificate in `extra_ca_files`
    /// (PEM; e.g. `--upstream-ca FILE`).
    pub fn new(extra_ca_files: &[PathBuf]) -> Result<UpstreamTls, TlsError> {
        Self::build(true, extra_ca_files)
    }

    /// Trusts only `extra_ca_files`: for tests and hosts whose upstreams are
    /// all served by a private CA.
    pub fn with_only_extra_cas(extra_ca_files: &[PathBuf]) -> Result<UpstreamTls, TlsError> {
        Self::build(false, extra_ca_files)
    }

    fn build(system: bool, extra_ca_files: &[PathBuf]) -> Result<UpstreamTls, TlsError> {
        let mut roots = RootCertStore::empty();
        if system {
            let (added, skipped) = roots.add_parsable_certificates(load_system_roots());
            if skipped > 0 {
                tracing::warn!(
                    skipped,
                    "skipped system roots that are not usable trust anchors"
                );
            }
            tracing::debug!(added, "loaded system trust roots");
        }
        for path in extra_ca_files {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| TlsError::ExtraCa {
                    path: path.clone(),
                    reason: format!("not a usable trust anchor: {e}"),
                })?;
            }
        }
        if roots.is_empty() {
            return Err(TlsError::NoTrustRoots);
        }
        let roots = Arc::new(roots);
        Ok(UpstreamTls {
            h2_or_http1: client_config(&roots, &[ALPN_H2, ALPN_HTTP1])?,
            http1_only: client_config(&roots, &[ALPN_HTTP1])?,
        })
    }

    /// The client config for an ALPN offer (for callers driving rustls
    /// themselves).
    pub fn client_config(&self, alpn: UpstreamAlpn) -> Arc<ClientConfig> {
        match alpn {
            UpstreamAlpn::H2OrHttp1 => Arc::clone(&self.h2_or_http1),
            UpstreamAlpn::Http1Only => Arc::clone(&self.http1_only),
        }
    }

    /// Performs the TLS handshake with upstream `host` (DNS name or IP
    /// literal) over `io`, verifying its certificate chain and name.
    pub async fn connect<IO>(
        &self,
        host: &str,
        io: IO,
        alpn: UpstreamAlpn,
    ) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let server_name =
            ServerName::try_from(host.to_owned()).map_err(|_| TlsError::InvalidName {
                name: host.to_owned(),
            })?;
        TlsConnector::from(self.client_config(alpn))
            .connect(server_name, io)
            .await
            .map_err(|e| classify_handshake_error(host, e))
    }
}

fn client_config(
    roots: &Arc<RootCertStore>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(Arc::clone(roots))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Explicit although it is rustls' default: resumption is relied upon.
    config.resumption = rustls::client::Resumption::in_memory_sessions(256);
    Ok(Arc::new(config))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::io("reading", path, e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ExtraCa {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::ExtraCa {
            path: path.to_owned(),
            reason: "contains no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// tokio-rustls reports rustls errors as `io::Error`s wrapping the
/// `rustls::Error`; pull certificate failures out into their own variant.
fn classify_handshake_error(host: &str, e: std::io::Error) -> TlsError {
    let cert_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|re| match re {
            rustls::Error::InvalidCertificate(reason) => Some(reason.clone()),
            _ => None,
        });
    match cert_error {
        Some(reason) => TlsError::UpstreamVerify {
            host: host.to_owned(),
            reason,
        },
        None => TlsError::UpstreamHandshake {
            host: host.to_owned(),
            source: e,
        },
    }
}
