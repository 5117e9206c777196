//! Upstreams and agents written in Python against real SDKs from PyPI, from the project's
//! virtualenv `.tools/proto-venv` (`cargo xtask setup` installs the official MCP SDK and gRPC
//! there): the scripts live in `tests/src/py/`. A server runs as a child process inside a test
//! namespace (`ip netns exec`), over TLS with a leaf from the test CA, and is killed on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls_pki_types::PrivateKeyDer;

use crate::daemon::workspace_root;
use crate::error::{Error, IoContext, Result};
use crate::netns::NetNs;
use crate::tls::TestCa;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The virtualenv's interpreter; an error naming the fix when it is not installed.
pub fn proto_python() -> Result<PathBuf> {
    let python = workspace_root().join(".tools/proto-venv/bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(Error::Setup(format!(
            "{} is missing: run `cargo xtask setup` (installs the MCP SDK and gRPC from PyPI)",
            python.display()
        )))
    }
}

/// Path of a script in `tests/src/py/`.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("tests/src/py").join(name)
}

/// A Python server in a namespace. Its directory holds the TLS files and whatever the script
/// writes there (the MCP server's `calls.log`).
#[derive(Debug)]
pub struct PyServer {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl PyServer {
    /// Runs `tests/src/py/<script>` as `python SCRIPT DIR HOST PORT ARGS...` inside `ns`, with
    /// a leaf for `names` in `DIR/cert.der` and `DIR/key.der`; returns once `addr` accepts.
    pub fn start(
        ns: &NetNs,
        ca: &TestCa,
        names: &[&str],
        addr: SocketAddr,
        name: &str,
        args: &[&str],
    ) -> Result<Self> {
        let python = proto_python()?;
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-py-")
            .tempdir()
            .ctx(|| "create server dir".into())?;
        let (chain, key) = ca.leaf(names)?;
        let key = match key {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => return Err(Error::Setup(format!("unexpected key kind {other:?}"))),
        };
        write(&dir.path().join("cert.der"), chain[0].as_ref())?;
        write(&dir.path().join("key.der"), &key)?;
        let log = std::fs::File::create(dir.path().join("server.log"))
            .ctx(|| "create server log".into())?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()])
            .arg(&python)
            .arg(script(name))
            .arg(dir.path())
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().ctx(|| "clone log".into())?)
            .stderr(log);
        let child = cmd.spawn().ctx(|| format!("spawn {name}"))?;
        let mut server = PyServer { child, dir, addr };
        server.wait_ready(ns, name)?;
        Ok(server)
    }

    fn wait_ready(&mut self, ns: &NetNs, name: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr;
        loop {
            let up = ns.run_in(Duration::from_secs(5), move || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            })?;
            if up {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Setup(format!(
                    "{name} exited ({status}) before listening:\n{}",
                    self.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("{name} listening on {addr}:\n{}", self.log()),
                    after: READY_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Lines of a file the server writes in its directory (empty if it wrote none).
    pub fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // `ip netns exec` execs the interpreter, so this is the server's own pid.
        if let Err(e) = self.child.kill() {
            eprintln!("cordon-e2e: killing a python upstream: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("cordon-e2e: reaping a python upstream: {e}");
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).ctx(|| format!("write {}", path.display()))
}
