//! Test certificates, made with the openssl CLI: a test CA with an ECDSA
//! P-256 certificate for `localhost` (the upstream nginx serves it; Cordon
//! and the peers trust the CA), and an RSA CA the explicit proxies (Squid,
//! mitmproxy) mint their interception certificates from.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

pub struct Certs {
    /// The CA that signed the upstream's certificate.
    pub upstream_ca: PathBuf,
    pub leaf_cert: PathBuf,
    pub leaf_key: PathBuf,
    /// The interception CA of the peers: certificate, key, and both in one
    /// file (mitmproxy's `mitmproxy-ca.pem`).
    pub proxy_ca: PathBuf,
    pub proxy_ca_key: PathBuf,
    pub proxy_ca_combined: PathBuf,
}

pub fn make(dir: &Path) -> anyhow::Result<Certs> {
    std::fs::create_dir_all(dir)?;
    let p = |n: &str| dir.join(n);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=cordon bench test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&p("test-ca.key"))?,
        "-out",
        s(&p("test-ca.pem"))?,
    ])?;
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        s(&p("localhost.key"))?,
        "-out",
        s(&p("localhost.csr"))?,
    ])?;
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&p("localhost.csr"))?,
        "-CA",
        s(&p("test-ca.pem"))?,
        "-CAkey",
        s(&p("test-ca.key"))?,
        "-set_serial",
        "2",
        "-days",
        "30",
        "-extfile",
        s(&p("leaf.ext"))?,
        "-out",
        s(&p("localhost.pem"))?,
    ])?;
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=bench interception CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&p("proxy-ca.key"))?,
        "-out",
        s(&p("proxy-ca.pem"))?,
    ])?;
    let combined = [
        std::fs::read_to_string(p("proxy-ca.key"))?,
        std::fs::read_to_string(p("proxy-ca.pem"))?,
    ]
    .concat();
    std::fs::write(p("proxy-ca-combined.pem"), combined)?;
    Ok(Certs {
        upstream_ca: p("test-ca.pem"),
        leaf_cert: p("localhost.pem"),
        leaf_key: p("localhost.key"),
        proxy_ca: p("proxy-ca.pem"),
        proxy_ca_key: p("proxy-ca.key"),
        proxy_ca_combined: p("proxy-ca-combined.pem"),
    })
}

fn s(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install the openssl package)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
