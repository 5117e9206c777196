//! The CA bundle handed to agents: the system roots plus the Cordon CA, so
//! tools that replace (rather than extend) their trust store with the file
//! still reach hosts the proxy passes through untouched.

use std::ffi::OsString;
use std::path::Path;

use crate::ca::CertAuthority;
use crate::error::TlsError;
use crate::secure_fs::write_atomic;
use crate::system_roots::load_system_roots;

/// Environment variables `cordon run` sets to the bundle path so common
/// runtimes and tools trust the Cordon CA. All of them point at the same
/// bundle, NODE_EXTRA_CA_CERTS included: node appends that file to its
/// built-in roots, so the duplicated system roots are harmless and one path
/// serves every variable.
pub const AGENT_CA_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "AWS_CA_BUNDLE",
];

/// `(variable, value)` pairs for an agent's environment.
pub fn agent_ca_env(bundle: &Path) -> Vec<(&'static str, OsString)> {
    AGENT_CA_ENV
        .iter()
        .map(|var| (*var, bundle.as_os_str().to_owned()))
        .collect()
}

impl CertAuthority {
    /// Writes the agent bundle to `path` (0644, atomically replaced).
    /// Returns how many system roots it contains; with none (a host without
    /// a trust store) the bundle holds only the Cordon CA.
    pub fn write_agent_bundle(&self, path: &Path) -> Result<usize, TlsError> {
        let system = load_system_roots();
        let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        let mut out = String::new();
        for cert in &system {
            let block = pem::Pem::new("CERTIFICATE", cert.to_vec());
            out.push_str(&pem::encode_config(&block, lf));
        }
        out.push_str(self.ca_pem());
        if !out.ends_with('\n') {
            out.push('\n');
        }
        write_atomic(path, out.as_bytes(), 0o644)?;
        Ok(system.len())
    }
}
