//! A real moto server (from PyPI, installed by `cargo xtask setup` into
//! `.tools/aws-venv`) with IAM authentication enforced, and the Python
//! agents that talk to it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cordon_vault::AwsRoleEntry;

/// `.tools/aws-venv/bin` of the workspace.
pub fn venv_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../.tools/aws-venv/bin");
    for tool in ["moto_server", "python", "aws"] {
        assert!(
            bin.join(tool).exists(),
            "{} is missing: moto, boto3 and the AWS CLI come from PyPI; run `cargo xtask setup`",
            bin.join(tool).display()
        );
    }
    bin
}

pub fn agents_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// A moto server that enforces IAM, with the account `bootstrap.py` made.
pub struct Moto {
    pub addr: SocketAddr,
    /// The `aws-role` entry an operator would store: the base user's key
    /// (allowed only to assume the role) and the role.
    pub entry: AwsRoleEntry,
    child: Child,
    _log: tempfile::NamedTempFile,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = venv_bin();
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start moto_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {addr} within 30 s: {}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new(bin.join("python"))
            .arg(agents_dir().join("bootstrap.py"))
            .arg(format!("http://{addr}"))
            .output()
            .expect("run bootstrap.py");
        assert!(
            out.status.success(),
            "bootstrap.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("bootstrap.py prints JSON");
        let entry = AwsRoleEntry {
            access_key_id: v["access_key_id"].as_str().expect("key id").to_string(),
            secret_access_key: v["secret_access_key"].as_str().expect("secret").to_string(),
            role_arn: v["role_arn"].as_str().expect("role").to_string(),
            session_duration_secs: 900,
            session_policy: None,
            sts_region: None,
        };
        entry
            .validate()
            .expect("moto's entry is a valid aws-role entry");
        Moto {
            addr,
            entry,
            child,
            _log: log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Our own child, by its handle.
        if let Err(e) = self.child.kill() {
            eprintln!("stopping moto_server: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("reaping moto_server: {e}");
        }
    }
}

/// Runs a Python agent script from `tests/agents` with `env` (the
/// placeholder's AWS_* variables) and returns its stdout.
pub fn run_python(script: &str, args: &[&str], env: &[(String, String)]) -> String {
    let bin = venv_bin();
    let out = Command::new(bin.join("python"))
        .arg(agents_dir().join(script))
        .args(args)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run python agent");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs the AWS CLI (from PyPI) as an agent.
pub fn run_aws_cli(
    endpoint: &str,
    args: &[&str],
    env: &[(String, String)],
) -> (bool, String, String) {
    let bin = venv_bin();
    let out = Command::new(bin.join("aws"))
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(args)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run aws");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
