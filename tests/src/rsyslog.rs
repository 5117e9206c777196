//! A real rsyslog (Debian's `rsyslogd`) as the audit collector: in the foreground, with its own
//! config in a temporary directory, listening with imtcp on a loopback port (optionally TLS
//! through rsyslog-gnutls, with a certificate from its own throwaway CA) and writing each
//! message's MSG part (nothing else) as one line of a file. Stop (or crash) and start it to
//! play a collector outage; Drop stops it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::process::{wait_child, wait_until};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// Shipped by rsyslog-gnutls, which carries rsyslog's TLS driver.
const GNUTLS_MARKER: &str = "/usr/share/doc/rsyslog-gnutls/copyright";
const READY: Duration = Duration::from_secs(15);
/// The name the TLS collector's certificate is issued for.
pub const TLS_NAME: &str = "collector.test";

#[derive(Debug)]
pub struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
    child: Option<Child>,
}

impl Rsyslog {
    /// Starts rsyslogd on a free loopback port, plain TCP.
    pub fn start() -> Result<Rsyslog> {
        Self::start_with(false)
    }

    /// Starts rsyslogd with TLS: its certificate names [`TLS_NAME`] and chains to
    /// [`Rsyslog::ca_path`].
    pub fn start_tls() -> Result<Rsyslog> {
        if !Path::new(GNUTLS_MARKER).exists() {
            return Err(Error::Setup(
                "rsyslog's TLS driver is missing: install rsyslog-gnutls (cargo xtask setup does)"
                    .into(),
            ));
        }
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Result<Rsyslog> {
        if !Path::new(RSYSLOGD).is_file() {
            return Err(Error::Setup(format!(
                "{RSYSLOGD} not found: install the rsyslog package (cargo xtask setup does)"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-rsyslog-")
            .tempdir()
            .ctx(|| "create rsyslog temp dir".into())?;
        let port = free_port()?;
        let mut r = Rsyslog {
            dir,
            port,
            tls,
            child: None,
        };
        if tls {
            r.write_certificates()?;
        }
        r.write_config()?;
        r.resume()?;
        Ok(r)
    }

    /// `127.0.0.1:PORT`, for `[audit.forward] address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file every received message's MSG is appended to, one per line.
    pub fn received_path(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }

    /// The lines received so far (an unterminated last line is left for the next read).
    pub fn received(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.received_path()).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |i| &text[..i]);
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The CA the TLS collector's certificate chains to (PEM).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A throwaway CA and a server certificate for [`TLS_NAME`], as PEM files.
    fn write_certificates(&self) -> Result<()> {
        let bad = |e: rcgen::Error| Error::Setup(format!("collector certificate: {e}"));
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Cordon e2e collector CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().map_err(bad)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(bad)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec![TLS_NAME.to_string()]).map_err(bad)?;
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, TLS_NAME);
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().map_err(bad)?;
        let cert = leaf.signed_by(&key, &issuer).map_err(bad)?;
        let d = self.dir.path();
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("cert.pem", cert.pem()),
            ("key.pem", key.serialize_pem()),
        ] {
            let path = d.join(name);
            std::fs::write(&path, pem).ctx(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path();
        let work = d.join("work");
        std::fs::create_dir_all(&work).ctx(|| format!("create {}", work.display()))?;
        // TLS through the gtls driver: server authentication only (the daemon verifies the
        // collector; the collector takes any client).
        let (driver, module) = if self.tls {
            (
                format!(
                    r#" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{}" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
                    self.ca_path().display(),
                    d.join("cert.pem").display(),
                    d.join("key.pem").display()
                ),
                r#"module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")"#,
            )
        } else {
            (String::new(), r#"module(load="imtcp")"#)
        };
        // %msg% of an RFC 5424 message is what follows the structured data: the record's
        // export line. Nothing is escaped (JSON lines hold no control characters).
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="256k"{driver})
{module}
template(name="body" type="string" string="%msg%\n")
ruleset(name="cordon") {{
    action(type="omfile" file="{out}" template="body")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="cordon")
"#,
            work = work.display(),
            out = self.received_path().display(),
            port = self.port,
        );
        let path = d.join("rsyslog.conf");
        std::fs::write(&path, conf).ctx(|| format!("write {}", path.display()))
    }

    /// Starts rsyslogd (again) and waits until its port accepts connections.
    pub fn resume(&mut self) -> Result<()> {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("rsyslogd.out")).ctx(|| "rsyslogd log".into())?;
        let err = log.try_clone().ctx(|| "rsyslogd log".into())?;
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .ctx(|| format!("spawn {RSYSLOGD}"))?;
        self.child = Some(child);
        let addr = self.address();
        wait_until("rsyslogd to listen", READY, || {
            std::net::TcpStream::connect(&addr).is_ok()
        })
        .map_err(|e| Error::Setup(format!("{e}; rsyslogd said:\n{}", self.output())))
    }

    /// SIGTERM, as a collector restart does; waits for the process to exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| Error::Setup(format!("SIGTERM rsyslogd: {e}")))?;
        if wait_child(&mut child, Duration::from_secs(10))?.is_none() {
            child.kill().ctx(|| "SIGKILL rsyslogd".into())?;
            child.wait().ctx(|| "reap rsyslogd".into())?;
        }
        Ok(())
    }

    /// A collector crash with data in flight: SIGSTOP (it stops reading; the kernel keeps
    /// acknowledging into its socket buffer), `frozen` later SIGKILL, so whatever it had
    /// buffered or queued is gone.
    pub fn crash(&mut self, frozen: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP)
            .map_err(|e| Error::Setup(format!("SIGSTOP rsyslogd: {e}")))?;
        std::thread::sleep(frozen);
        child.kill().ctx(|| "SIGKILL rsyslogd".into())?;
        child.wait().ctx(|| "reap rsyslogd".into())?;
        Ok(())
    }

    /// rsyslogd's own output (for failure messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.out")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("rsyslog: {e}");
        }
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx(|| "bind a free port".into())?;
    Ok(l.local_addr().ctx(|| "free port".into())?.port())
}
