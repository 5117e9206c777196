//! The upstream every scenario talks to: nginx (Debian nginx-light) on
//! loopback. One HTTPS port (h1 and h2, the ECDSA `localhost` certificate),
//! one HTTPS port that speaks HTTP/1.1 only (no `http2` on its listen, so
//! its ALPN offers http/1.1 alone: the h2-client scenario of issue 15),
//! one plain HTTP port, and one HTTPS port with an access log that records
//! when each request arrived (the kill-switch scenario counts requests that
//! reach it after `cordon kill` returned), and the JIT-token scenario's
//! HTTPS port (`jit::nginx`: a fake GitHub mint endpoint and a path that
//! answers only requests carrying a bench token).
use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::bail;

use super::{certs::Certs, free_port, proc::Guard};

/// Body of the small GET: 100 bytes.
pub const SMALL_BODY: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
pub const BIG_PATH: &str = "/1m";

pub struct Upstream {
    pub https: u16,
    /// HTTPS, HTTP/1.1 only.
    pub https_h1: u16,
    pub http: u16,
    /// HTTPS with the arrival log (`kill_log`).
    pub https_logged: u16,
    pub kill_log: PathBuf,
    /// HTTPS, the JIT-token scenario's (see `jit`).
    pub https_jit: u16,
    /// The bench's work dir (nginx's prefix; the JIT logs are there).
    pub dir: PathBuf,
    /// Holds nginx for as long as the value lives.
    pub _guard: Guard,
}

pub fn start(dir: &Path, certs: &Certs) -> anyhow::Result<Upstream> {
    let (https, http, https_logged) = (free_port()?, free_port()?, free_port()?);
    let (https_h1, https_jit) = (free_port()?, free_port()?);
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    std::fs::write(www.join("1m"), vec![b'x'; 1 << 20])?;
    let kill_log = dir.join("kill-access.log");
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        config(dir, certs, [https, https_h1, http, https_logged], &kill_log)
            + &super::jit::nginx(dir, https_jit)
            + "}\n",
    )?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c").arg(&conf).arg("-p").arg(dir);
    super::proc::quiet(&mut cmd);
    let mut guard = Guard::spawn("nginx", &mut cmd)?;
    wait_listening(
        &mut guard,
        &[https, https_h1, http, https_logged, https_jit],
    )?;
    Ok(Upstream {
        https,
        https_h1,
        http,
        https_logged,
        kill_log,
        https_jit,
        dir: dir.to_path_buf(),
        _guard: guard,
    })
}

/// Waits (at most 30 s) until every port accepts connections.
pub fn wait_listening(guard: &mut Guard, ports: &[u16]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in ports {
        loop {
            if TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                break;
            }
            if !guard.alive() {
                bail!("{} exited before listening on {port}", guard.name);
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {port} within 30 s", guard.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// `ports`: HTTPS (h1+h2), HTTPS (h1 only), plain HTTP, HTTPS with the
/// arrival log. The `http` block is left open for the JIT server.
fn config(dir: &Path, certs: &Certs, ports: [u16; 4], kill_log: &Path) -> String {
    let [https, https_h1, http, https_logged] = ports;
    let d = dir.display();
    let (cert, key) = (certs.leaf_cert.display(), certs.leaf_key.display());
    let log = kill_log.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    sendfile on;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    log_format arrival '$msec $request_time $status';
    server {{
        listen 127.0.0.1:{https} ssl http2;
        server_name localhost;
        location / {{ return 200 "{SMALL_BODY}"; }}
        location = {BIG_PATH} {{ root {d}/www; try_files /1m =404; }}
    }}
    server {{
        listen 127.0.0.1:{https_h1} ssl;
        server_name localhost;
        location / {{ return 200 "{SMALL_BODY}"; }}
        location = {BIG_PATH} {{ root {d}/www; try_files /1m =404; }}
    }}
    server {{
        listen 127.0.0.1:{http};
        location / {{ return 200 "{SMALL_BODY}"; }}
        location = {BIG_PATH} {{ root {d}/www; try_files /1m =404; }}
    }}
    server {{
        listen 127.0.0.1:{https_logged} ssl http2;
        server_name localhost;
        access_log {log} arrival;
        location / {{ return 200 "{SMALL_BODY}"; }}
    }}
"#
    )
}
