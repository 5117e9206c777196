//! `cordon-demo probe ...`: tiny socket probes the demo runs as agents, so the demo needs no
//! scripting language on the host. Each prints one line saying what the kernel answered and
//! exits 0 only when the operation succeeded.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// `probe udp ADDR` sends one datagram; `probe raw` opens a raw ICMP socket; `probe ws HOST
/// PORT PATH MESSAGE` sends MESSAGE on a WebSocket over HTTP/1.1 and prints the answer.
pub fn main(args: &[String]) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("ws") => match &args[1..] {
            [host, port, path, message] => ws(host, port, path, message),
            _ => Err("usage: cordon-demo probe ws HOST PORT PATH MESSAGE".to_owned()),
        },
        Some("udp") => match args.get(1).map(|a| a.parse::<SocketAddr>()) {
            Some(Ok(addr)) => udp(addr),
            _ => Err("usage: cordon-demo probe udp IP:PORT".to_owned()),
        },
        Some("raw") => raw(),
        _ => Err("usage: cordon-demo probe (udp IP:PORT | raw | ws ...)".to_owned()),
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            println!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn udp(addr: SocketAddr) -> Result<String, String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|e| format!("bind address: {e}"))?;
    let sock = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    match sock.send_to(b"exfiltrated-bytes", addr) {
        Ok(n) => Ok(format!("sendto({addr}): sent {n} bytes")),
        Err(e) => Err(format!("sendto({addr}): {e}")),
    }
}

fn ws(host: &str, port: &str, path: &str, message: &str) -> Result<String, String> {
    let port: u16 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime
        .block_on(crate::ws_client::exchange_once(
            "h1", host, port, path, message,
        ))
        .map_err(|e| format!("wss://{host}:{port}{path}: {e:#}"))
}

fn raw() -> Result<String, String> {
    // SAFETY: socket(2) with constant arguments; the descriptor is closed right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(format!(
            "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a descriptor this function owns.
    unsafe { libc::close(fd) };
    Ok("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): opened".to_owned())
}

/// A copy of this executable any user can run (agents run as `nobody`, who may not be able
/// to reach the build directory). Removed on drop.
#[derive(Debug)]
pub struct ProbeBin {
    dir: tempfile::TempDir,
}

impl ProbeBin {
    pub fn install() -> anyhow::Result<Self> {
        let me = std::env::current_exe().context("find the cordon-demo executable")?;
        let dir = tempfile::Builder::new()
            .prefix("cordon-demo-probe-")
            .tempdir()
            .context("create the probe dir")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", dir.path().display()))?;
        let this = Self { dir };
        let dest = this.path();
        crate::process::copy_executable(&me, &dest)
            .with_context(|| format!("copy {} to {}", me.display(), dest.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", dest.display()))?;
        Ok(this)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("cordon-demo")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
