//! The bare forwarder (`bench-forwarder`, issue 18) as a via: one process,
//! one route per upstream port, each on its own loopback port. oha reaches
//! it with `--connect-to UPSTREAM_HOST:UPSTREAM_PORT:127.0.0.1:ROUTE_PORT`,
//! so it sends the same URL, SNI and Host as direct and as through Cordon,
//! and the forwarder sends each request on to the one upstream its route
//! names, as Cordon's redirect sends a connection to the address the agent
//! dialled. The client connects to the forwarder's port itself (no eBPF
//! redirect): that is the honest equivalent, since the redirect is a cost
//! Cordon has and the forwarder has not.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{certs::Certs, free_port, proc::Guard, upstream::Upstream, upstream::wait_listening};

pub struct Bare {
    /// The local CA the forwarder mints its leaves from (clients trust it).
    pub ca: PathBuf,
    /// (upstream port, forwarder port) per route.
    routes: Vec<(u16, u16)>,
    pub guard: Guard,
}

impl Bare {
    pub fn start(bin: &Path, dir: &Path, certs: &Certs, up: &Upstream) -> anyhow::Result<Bare> {
        let ca_dir = dir.join("bare-ca");
        let mut routes = Vec::new();
        let mut args = vec![];
        // The HTTPS ports are verified as `localhost`, the name the clients
        // use; plain HTTP is addressed by IP (see http::url).
        for (tls, host, port) in [
            (true, "localhost", up.https),
            (true, "localhost", up.https_h1),
            (false, "127.0.0.1", up.http),
        ] {
            let listen = free_port()?;
            let mode = if tls { "tls" } else { "plain" };
            args.push(format!("{mode}:{listen}:{host}:{port}"));
            routes.push((port, listen));
        }
        let log = std::fs::File::create(dir.join("bare-forwarder.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg(&ca_dir)
            .arg(&certs.upstream_ca)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut guard = Guard::spawn("bare forwarder", &mut cmd)?;
        let ports: Vec<u16> = routes.iter().map(|r| r.1).collect();
        wait_listening(&mut guard, &ports)?;
        Ok(Bare {
            ca: ca_dir.join("ca.pem"),
            routes,
            guard,
        })
    }

    /// oha's `--connect-to` for a URL on `host:upstream_port`.
    pub fn connect_to(&self, host: &str, upstream_port: u16) -> Option<String> {
        self.routes
            .iter()
            .find(|(up, _)| *up == upstream_port)
            .map(|(up, listen)| format!("{host}:{up}:127.0.0.1:{listen}"))
    }
}
