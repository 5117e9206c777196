//! moto's server (from PyPI, in `.tools/aws-venv`, installed by `cargo xtask
//! setup`) as S3, STS, DynamoDB and Bedrock runtime inside a test namespace,
//! over TLS with a leaf from the test CA, with IAM authentication enforced:
//! it recomputes every request's signature with the session's secret, checks
//! the session token and applies the role's policy. The account is made by
//! cordon-jit's `bootstrap.py`: a base user that may only assume the role
//! `agent`, which may use S3 (never `s3:DeleteObject`), DynamoDB and
//! Bedrock's InvokeModel, a bucket `docs` and a table `notes`. moto's
//! InvokeModel answers `{}`; `tests/src/py/moto_server.py` gives it the
//! Messages API answer with usage that Anthropic models return on Bedrock.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls_pki_types::PrivateKeyDer;

use crate::daemon::workspace_root;
use crate::error::{Error, IoContext, Result};
use crate::netns::NetNs;
use crate::tls::TestCa;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `.tools/aws-venv/bin`, or an error naming the fix.
pub fn venv_bin() -> Result<PathBuf> {
    let bin = workspace_root().join(".tools/aws-venv/bin");
    for tool in ["moto_server", "python", "aws"] {
        if !bin.join(tool).exists() {
            return Err(Error::Setup(format!(
                "{} is missing: moto, boto3 and the AWS CLI come from PyPI; run `cargo xtask setup`",
                bin.join(tool).display()
            )));
        }
    }
    Ok(bin)
}

/// How an agent (running as `nobody`) starts Python with boto3 and the AWS
/// CLI: the system interpreter over the virtualenv's packages. The venv's
/// own interpreter may live under /root (pyenv), which `nobody` cannot
/// execute; boto3, botocore and the CLI are pure Python.
pub fn agent_python() -> Result<Vec<String>> {
    let lib = venv_bin()?.join("../lib");
    let site = std::fs::read_dir(&lib)
        .ctx(|| format!("read {}", lib.display()))?
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .ok_or_else(|| Error::Setup(format!("no site-packages under {}", lib.display())))?;
    Ok(vec![
        "/usr/bin/env".into(),
        format!("PYTHONPATH={}", site.display()),
        crate::world::PYTHON.into(),
    ])
}

/// The running moto; killed on drop.
#[derive(Debug)]
pub struct Moto {
    pub addr: SocketAddr,
    /// The `aws-role` vault entry an operator would store (stored form).
    pub entry_json: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Moto {
    /// moto on `ip:443` in `ns`, its certificate valid for `names` and `ip`.
    pub fn start(ns: &NetNs, ca: &TestCa, ip: IpAddr, names: &[&str]) -> Result<Moto> {
        let bin = venv_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-moto-")
            .tempdir()
            .ctx(|| "moto dir".into())?;
        let ip_name = ip.to_string();
        let mut all: Vec<&str> = names.to_vec();
        all.push(&ip_name);
        let (chain, key) = ca.leaf(&all)?;
        let key = match key {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => return Err(Error::Setup(format!("unexpected key kind {other:?}"))),
        };
        let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_pem, pem("CERTIFICATE", chain[0].as_ref())).ctx(|| "cert".into())?;
        std::fs::write(&key_pem, pem("PRIVATE KEY", &key)).ctx(|| "key".into())?;
        let log = std::fs::File::create(dir.path().join("moto.log")).ctx(|| "log".into())?;
        // moto_server, through a wrapper that only gives Bedrock's
        // InvokeModel an answer with usage (see the script).
        let server = workspace_root().join("tests/src/py/moto_server.py");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(bin.join("python"))
            .arg(server)
            .args(["-H", &ip_name, "-p", "443", "-c"])
            .arg(&cert_pem)
            .arg("-k")
            .arg(&key_pem)
            .stdin(Stdio::null())
            .stdout(log.try_clone().ctx(|| "log".into())?)
            .stderr(log)
            .spawn()
            .ctx(|| "spawn moto_server".into())?;
        let addr = SocketAddr::new(ip, 443);
        let mut moto = Moto {
            addr,
            entry_json: String::new(),
            child,
            dir,
        };
        moto.wait_ready(ns)?;
        moto.entry_json = moto.bootstrap(ns, &bin, ca)?;
        Ok(moto)
    }

    fn wait_ready(&mut self, ns: &NetNs) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr;
        let up = move || TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok();
        while !ns.run_in(Duration::from_secs(5), up)? {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Setup(format!(
                    "moto_server exited ({status}):\n{}",
                    self.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("moto_server listening on {}:\n{}", self.addr, self.log()),
                    after: READY_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Makes the account (unauthenticated), then turns IAM enforcement on.
    fn bootstrap(&self, ns: &NetNs, bin: &std::path::Path, ca: &TestCa) -> Result<String> {
        let script = workspace_root().join("agent-userspace/crates/jit/tests/agents/bootstrap.py");
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(bin.join("python"))
            .arg(script)
            .arg(self.url())
            .env("AWS_CA_BUNDLE", ca.pem_path())
            .env("SSL_CERT_FILE", ca.pem_path())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .ctx(|| "run bootstrap.py".into())?;
        if !out.status.success() {
            return Err(Error::Setup(format!(
                "bootstrap.py failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Setup(format!("bootstrap.py printed bad JSON: {e}")))?;
        Ok(serde_json::json!({
            "access_key_id": v["access_key_id"],
            "secret_access_key": v["secret_access_key"],
            "role_arn": v["role_arn"],
            "session_duration_secs": 900,
        })
        .to_string())
    }

    /// The STS endpoint the daemon assumes roles at (`[credentials] sts_endpoint`).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr.ip())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Our own child (`ip netns exec` execs moto_server), by its handle.
        if let Err(e) = self.child.kill() {
            eprintln!("stopping moto_server: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("reaping moto_server: {e}");
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
