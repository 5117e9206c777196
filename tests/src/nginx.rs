//! A real nginx (Debian's package) as the operator's reverse proxy in front of a unix-socket
//! web console: in the foreground with its own config in a temporary directory, workers as
//! `www-data` (so the console socket's group mode is what lets them in), HTTP basic
//! authentication, and the authenticated user forwarded in `X-Remote-User` (replacing any
//! such header the client sent). Drop stops it.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::process::{wait_child, wait_until};

const NGINX: &str = "/usr/sbin/nginx";
const READY: Duration = Duration::from_secs(15);
/// The group nginx's workers run as, which the console socket is shared with.
pub const WORKER_GROUP: &str = "www-data";
/// The header the proxy names the authenticated user in.
pub const USER_HEADER: &str = "X-Remote-User";

#[derive(Debug)]
pub struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Proxies `127.0.0.1:port` to the console on `socket`, letting in `users` (name,
    /// password) by basic authentication.
    pub fn start(socket: &Path, users: &[(&str, &str)], port: u16) -> Result<Nginx> {
        if !Path::new(NGINX).is_file() {
            return Err(Error::Setup(format!(
                "{NGINX} not found: install the nginx package (cargo xtask setup does)"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-nginx-")
            .tempdir()
            .ctx(|| "create nginx temp dir".into())?;
        // Workers (www-data) write request bodies under it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .ctx(|| "chmod nginx temp dir".into())?;
        let d = dir.path();
        // nginx's own password-file scheme for plain text: fine for a throwaway test user.
        let htpasswd: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        std::fs::write(d.join("htpasswd"), htpasswd).ctx(|| "write htpasswd".into())?;
        std::fs::set_permissions(d.join("htpasswd"), std::fs::Permissions::from_mode(0o644))
            .ctx(|| "chmod htpasswd".into())?;
        let conf = format!(
            r#"daemon off;
user {WORKER_GROUP} {WORKER_GROUP};
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_basic "cordon console";
            auth_basic_user_file {d}/htpasswd;
            proxy_pass http://unix:{socket}:;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header {USER_HEADER} $remote_user;
            proxy_set_header Authorization "";
            # The live audit view is Server-Sent Events.
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#,
            d = d.display(),
            socket = socket.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).ctx(|| "write nginx.conf".into())?;
        let log = std::fs::File::create(d.join("nginx.out")).ctx(|| "nginx log".into())?;
        let err = log.try_clone().ctx(|| "nginx log".into())?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .ctx(|| format!("spawn {NGINX}"))?;
        let mut n = Nginx {
            dir,
            port,
            child: Some(child),
        };
        let addr = format!("127.0.0.1:{port}");
        if let Err(e) = wait_until("nginx to listen", READY, || {
            std::net::TcpStream::connect(&addr).is_ok()
        }) {
            let said = n.output();
            n.stop();
            return Err(Error::Setup(format!("{e}; nginx said:\n{said}")));
        }
        Ok(n)
    }

    /// A free loopback port to start on (taken before the console's config names it).
    pub fn free_port() -> Result<u16> {
        Ok(TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ctx(|| "a free port".into())?
            .port())
    }

    /// `http://127.0.0.1:PORT`: the console's public origin.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's output and error log (for failure messages).
    pub fn output(&self) -> String {
        let d = self.dir.path();
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
        format!("{}{}", read("nginx.out"), read("error.log"))
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // SIGTERM: the master stops its workers, then exits.
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err()
            || !matches!(wait_child(&mut child, Duration::from_secs(10)), Ok(Some(_)))
        {
            if let Err(e) = child.kill() {
                eprintln!("nginx: SIGKILL: {e}");
            }
            if let Err(e) = child.wait() {
                eprintln!("nginx: reap: {e}");
            }
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
