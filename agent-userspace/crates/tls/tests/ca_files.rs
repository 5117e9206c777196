//! The CA directory: creation, reload, permission enforcement, and the
//! bundle handed to agents.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use cordon_tls::{AGENT_CA_ENV, CA_CERT_FILE, CA_KEY_FILE, CertAuthority, TlsError, agent_ca_env};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

#[test]
fn first_start_creates_p256_ca_with_strict_file_modes() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("tls");
    let ca = CertAuthority::load_or_create(&ca_dir).unwrap();
    assert_eq!(mode(&ca_dir.join(CA_KEY_FILE)), 0o600);
    assert_eq!(mode(&ca_dir.join(CA_CERT_FILE)), 0o644);
    assert_eq!(mode(&ca_dir), 0o700);
    assert_eq!(ca.ca_cert_path(), ca_dir.join(CA_CERT_FILE));
    assert_eq!(fs::read_to_string(ca.ca_cert_path()).unwrap(), ca.ca_pem());

    let (_, cert) = parse_x509_certificate(ca.ca_der()).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert!(cn.as_str().unwrap().starts_with("Cordon Local CA "));
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert_eq!(
        cert.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap(),
        x509_parser::oid_registry::OID_EC_P256
    );
    let years = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert_eq!(years, 10);
}

#[test]
fn second_start_loads_the_same_ca_and_signs_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = CertAuthority::load_or_create(dir.path()).unwrap();
    let key_before = fs::read(dir.path().join(CA_KEY_FILE)).unwrap();
    let second = CertAuthority::load_or_create(dir.path()).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(key_before, fs::read(dir.path().join(CA_KEY_FILE)).unwrap());

    let leaf = second.leaf_for("example.org").unwrap();
    let (_, leaf_cert) = parse_x509_certificate(&leaf.cert[0]).unwrap();
    let (_, ca_cert) = parse_x509_certificate(first.ca_der()).unwrap();
    leaf_cert
        .verify_signature(Some(ca_cert.public_key()))
        .expect("leaf from the reloaded CA verifies under the original CA key");
}

#[test]
fn key_file_looser_than_0600_is_refused_with_path_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    CertAuthority::load_or_create(dir.path()).unwrap();
    let key = dir.path().join(CA_KEY_FILE);
    for loose in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&key, fs::Permissions::from_mode(loose)).unwrap();
        let err = CertAuthority::load_or_create(dir.path()).unwrap_err();
        match &err {
            TlsError::KeyPermissions { path, mode } => {
                assert_eq!(path, &key);
                assert_eq!(*mode, loose);
            }
            other => panic!("expected KeyPermissions, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&key.display().to_string()) && msg.contains(&format!("{loose:04o}")));
    }
    fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
    CertAuthority::load_or_create(dir.path()).expect("0400 is stricter than 0600");
}

#[test]
fn half_present_ca_is_an_error_not_silently_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    CertAuthority::load_or_create(dir.path()).unwrap();
    fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
    let err = CertAuthority::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, TlsError::CaIncomplete { .. }), "{err:?}");
    assert!(!dir.path().join(CA_KEY_FILE).exists());
}

#[test]
fn key_not_matching_certificate_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    CertAuthority::load_or_create(a.path()).unwrap();
    CertAuthority::load_or_create(b.path()).unwrap();
    fs::copy(b.path().join(CA_KEY_FILE), a.path().join(CA_KEY_FILE)).unwrap();
    fs::set_permissions(
        a.path().join(CA_KEY_FILE),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    match CertAuthority::load_or_create(a.path()).unwrap_err() {
        TlsError::CaInvalid { path, reason } => {
            assert_eq!(path, a.path().join(CA_CERT_FILE));
            assert!(reason.contains("does not match"), "{reason}");
        }
        other => panic!("expected CaInvalid, got {other:?}"),
    }
}

#[test]
fn agent_bundle_holds_system_roots_then_cordon_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::load_or_create(&dir.path().join("ca")).unwrap();
    let bundle = dir.path().join("agent-ca.pem");
    let system = ca.write_agent_bundle(&bundle).unwrap();
    assert_eq!(mode(&bundle), 0o644);

    let bytes = fs::read(&bundle).unwrap();
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(certs.len(), system + 1);
    assert_eq!(certs.last().unwrap(), ca.ca_der());
    assert!(!String::from_utf8(bytes).unwrap().contains('\r'));

    let env = agent_ca_env(&bundle);
    assert_eq!(env.len(), AGENT_CA_ENV.len());
    assert!(
        env.iter()
            .any(|(k, v)| *k == "NODE_EXTRA_CA_CERTS" && v == bundle.as_os_str())
    );
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "PIP_CERT",
        "AWS_CA_BUNDLE",
    ] {
        assert!(AGENT_CA_ENV.contains(&var), "{var}");
    }
}
