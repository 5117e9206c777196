//! Self-test of the e2e harness, for real, as root: namespaces, servers, DNS, git, TLS, and the
//! daemon lifecycle helpers. No Cordon involved; traffic goes from the host straight to the
//! namespaces.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::Duration;

use cordon_e2e::{
    DEFAULT_TLS_NAMES, Daemon, DaemonOpts, GitServer, HttpServer, HttpsServer, Method, NetNs,
    PolicyDir, RecordType, Reply, ResponseCode, TcpEcho, TestCa, TestCgroupRoot, TestDns, UdpSink,
    dns_query, dns_query_tcp, hermetic_git, require_root_or_skip, run_with_timeout,
};

const T: Duration = Duration::from_secs(20);

/// curl with a hard time limit, never through a proxy from the environment.
fn curl(args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--noproxy", "*"])
        .args(args);
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    run_with_timeout(&mut cmd, T).unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ip_ok(args: &[&str]) -> String {
    let out = run_with_timeout(Command::new("ip").args(args), T).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[path = "harness/daemon.rs"]
mod daemon;
#[path = "harness/git.rs"]
mod git;
#[path = "harness/net.rs"]
mod net;
#[path = "harness/raw.rs"]
mod raw;
#[path = "harness/web.rs"]
mod web;
