//! The host's trust store, read through rustls-native-certs.

use rustls_pki_types::CertificateDer;

/// Loads the system roots. Unreadable or unparsable entries are logged and
/// skipped: one bad file in /etc/ssl/certs must not stop the proxy, while
/// callers still refuse to run with zero roots.
pub(crate) fn load_system_roots() -> Vec<CertificateDer<'static>> {
    let result = rustls_native_certs::load_native_certs();
    for error in &result.errors {
        tracing::warn!(%error, "skipping unreadable system certificate");
    }
    if result.certs.is_empty() {
        tracing::warn!("the system trust store yielded no certificates");
    }
    result.certs
}
