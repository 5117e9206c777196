//! The peers Cordon is compared with, as explicit proxies on loopback:
//! Squid (Debian squid-openssl, `ssl_bump` peek at step 1 then bump) and
//! mitmproxy (regular mode). Both intercept TLS with the bench's RSA
//! interception CA and verify the upstream against the test CA, as Cordon
//! does.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use super::{certs::Certs, free_port, proc::Guard, upstream::wait_listening};

pub struct Peer {
    pub port: u16,
    /// The CA a client must trust to talk HTTPS through this proxy.
    pub client_ca: PathBuf,
    pub guard: Guard,
}

const CERTGEN: &str = "/usr/lib/squid/security_file_certgen";

pub fn start_squid(dir: &Path, certs: &Certs) -> anyhow::Result<Peer> {
    let d = dir.join("squid");
    std::fs::create_dir_all(&d)?;
    let db = d.join("ssl_db");
    let _ = std::fs::remove_dir_all(&db);
    let out = Command::new(CERTGEN)
        .arg("-c")
        .arg("-s")
        .arg(&db)
        .args(["-M", "16MB"])
        .output()
        .with_context(|| format!("running {CERTGEN}"))?;
    if !out.status.success() {
        bail!(
            "{CERTGEN} -c failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Squid drops to the `proxy` user; it must own its working files.
    let out = Command::new("chown")
        .args(["-R", "proxy:proxy"])
        .arg(&d)
        .output()
        .context("running chown")?;
    if !out.status.success() {
        bail!(
            "chown proxy {}: {}",
            d.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = free_port()?;
    let conf = d.join("squid.conf");
    std::fs::write(&conf, squid_config(&d, port, certs))?;
    let log = std::fs::File::create(dir.join("squid-stderr.log"))?;
    let mut cmd = Command::new("squid");
    cmd.arg("-N")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut guard = Guard::spawn("squid", &mut cmd)?;
    wait_listening(&mut guard, &[port])?;
    Ok(Peer {
        port,
        client_ca: certs.proxy_ca.clone(),
        guard,
    })
}

fn squid_config(d: &Path, port: u16, certs: &Certs) -> String {
    let dd = d.display();
    let (ca, key, up) = (
        certs.proxy_ca.display(),
        certs.proxy_ca_key.display(),
        certs.upstream_ca.display(),
    );
    format!(
        r#"http_port 127.0.0.1:{port} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert={ca} tls-key={key}
sslcrtd_program {CERTGEN} -s {dd}/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile={up}
http_access allow localhost
http_access deny all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log {dd}/cache.log
pid_filename {dd}/squid.pid
coredump_dir {dd}
max_filedescriptors 65536
shutdown_lifetime 0 seconds
visible_hostname cordon-bench
icp_port 0
htcp_port 0
"#
    )
}

pub fn start_mitmproxy(dir: &Path, mitmdump: &Path, certs: &Certs) -> anyhow::Result<Peer> {
    let confdir = dir.join("mitmproxy");
    std::fs::create_dir_all(&confdir)?;
    std::fs::copy(&certs.proxy_ca_combined, confdir.join("mitmproxy-ca.pem"))?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("mitmproxy.log"))?;
    let mut cmd = Command::new(mitmdump);
    cmd.args(["-q", "--listen-host", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--set")
        .arg(format!("confdir={}", confdir.display()))
        .arg("--set")
        .arg(format!(
            "ssl_verify_upstream_trusted_ca={}",
            certs.upstream_ca.display()
        ))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut guard = Guard::spawn("mitmproxy", &mut cmd)?;
    wait_listening(&mut guard, &[port])?;
    Ok(Peer {
        port,
        client_ca: certs.proxy_ca.clone(),
        guard,
    })
}
