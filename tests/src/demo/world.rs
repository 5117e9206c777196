//! The demo's local internet: one network namespace with fake GitHub (and its WebSocket) and
//! Stripe (HTTPS, from a throwaway CA), a plain HTTP host and a UDP sink no agent may reach, a DNS upstream on
//! loopback, and the real daemon pointed at them. Dropping it tears everything down.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::policy;
use crate::{
    Daemon, DaemonOpts, HttpServer, HttpsServer, Method, NetNs, PolicyDir, Reply, TestCa, TestDns,
    UdpSink, ws_reflect::WsReflect,
};

/// Port of the UDP sink agents try to reach.
pub const UDP_PORT: u16 = 9999;
/// A host on the fake internet that no demo policy allows.
pub const PASTE_HOST: &str = "paste.test";
/// Where api.github.com serves its WebSocket.
pub const GITHUB_WS_PORT: u16 = 8443;

/// Everything the demo runs against. Fields drop in declaration order: the daemon goes first,
/// the namespace last.
#[derive(Debug)]
pub struct World {
    pub daemon: Daemon,
    pub github: HttpsServer,
    /// A WebSocket on GitHub's host that hands the handshake back (chapter 8).
    pub github_ws: WsReflect,
    pub stripe: HttpsServer,
    pub paste: HttpServer,
    pub sink: UdpSink,
    pub dns: TestDns,
    pub policies: PolicyDir,
    pub ca: TestCa,
    pub ns: NetNs,
}

/// Facts the steps need about how the world was built.
#[derive(Debug, Clone)]
pub struct Layout {
    pub github_ip: Ipv4Addr,
    pub stripe_ip: Ipv4Addr,
    pub paste_ip: Ipv4Addr,
}

impl World {
    /// Build the namespace and upstreams, write the demo policy and start the daemon from
    /// `cordon`.
    pub fn start(cordon: &Path, workspace: &Path) -> anyhow::Result<World> {
        let ns = NetNs::new().context("create the demo network namespace")?;
        let ca = TestCa::new().context("create the demo upstream CA")?;
        let (github_ip, stripe_ip, paste_ip) = (ns.v4_at(0), ns.v4_at(1), ns.v4_at(2));
        let github = HttpsServer::start_on(
            &ns,
            &ca,
            &["api.github.com", "github.com"],
            &[(github_ip.into(), 443)],
        )
        .context("start fake api.github.com")?;
        fake_github(&github);
        let github_ws = WsReflect::start(
            &ns,
            &ca,
            &["api.github.com"],
            &[(github_ip.into(), GITHUB_WS_PORT)],
            false,
        )
        .context("start api.github.com's WebSocket")?;
        let stripe =
            HttpsServer::start_on(&ns, &ca, &["api.stripe.com"], &[(stripe_ip.into(), 443)])
                .context("start fake api.stripe.com")?;
        fake_stripe(&stripe);
        let paste = HttpServer::start_on(&ns, &[(paste_ip.into(), 80)])
            .context("start the unlisted HTTP host")?;
        let sink =
            UdpSink::start_on(&ns, &[(paste_ip.into(), UDP_PORT)]).context("start the UDP sink")?;
        let ip = |v: Ipv4Addr| [IpAddr::V4(v)];
        let dns = TestDns::start_with(&[
            ("api.github.com", &ip(github_ip)),
            ("github.com", &ip(github_ip)),
            ("api.stripe.com", &ip(stripe_ip)),
            (PASTE_HOST, &ip(paste_ip)),
        ])
        .context("start the DNS upstream")?;
        let policies = PolicyDir::new().context("create the policy dir")?;
        seed_connectors(&policies, workspace)?;
        policy::write_all(&policies)?;
        let daemon = Daemon::start(
            DaemonOpts::new(&policies.path(), dns.addr())
                .upstream_ca(&ca.pem_path())
                .arg("--console")
                .arg("127.0.0.1:0")
                .bin(cordon),
        )
        .context("start the cordon daemon")?;
        Ok(World {
            daemon,
            github,
            github_ws,
            stripe,
            paste,
            sink,
            dns,
            policies,
            ca,
            ns,
        })
    }

    pub fn layout(&self) -> Layout {
        Layout {
            github_ip: self.ns.v4_at(0),
            stripe_ip: self.ns.v4_at(1),
            paste_ip: self.ns.v4_at(2),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.daemon.state_dir().to_owned()
    }
}

/// `PolicyDir::new` copies the connectors of the workspace this crate was built in; the demo
/// uses the ones of `--workspace` so a moved checkout still shows its own connectors.
fn seed_connectors(policies: &PolicyDir, workspace: &Path) -> anyhow::Result<()> {
    let from = workspace.join("policies/connectors");
    let entries = std::fs::read_dir(&from).with_context(|| format!("read {}", from.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("read an entry of {}", from.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .with_context(|| format!("{} has no file name", path.display()))?
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            policies.write(&format!("connectors/{name}"), &text)?;
        }
    }
    Ok(())
}

/// The fake GitHub answers the routes the demo uses; the PR routes carry `base.ref`, which
/// Cordon fetches (enrichment) to decide a merge.
fn fake_github(s: &HttpsServer) {
    s.route(
        Some(Method::GET),
        "/repos/acme/app",
        Reply::json(
            200,
            &json!({"full_name": "acme/app", "default_branch": "main"}),
        ),
    );
    s.route(
        Some(Method::POST),
        "/repos/acme/app/issues",
        Reply::json(201, &json!({"number": 42, "state": "open"})),
    );
    for (number, base, head) in [
        (7, "main", "release-prep"),
        (8, "feature/login", "fix/typo"),
    ] {
        s.route(
            Some(Method::GET),
            &format!("/repos/acme/app/pulls/{number}"),
            Reply::json(
                200,
                &json!({"number": number, "base": {"ref": base}, "head": {"ref": head}}),
            ),
        );
        s.route(
            Some(Method::PUT),
            &format!("/repos/acme/app/pulls/{number}/merge"),
            Reply::json(
                200,
                &json!({"merged": true, "message": "Pull Request successfully merged"}),
            ),
        );
    }
    s.route(
        Some(Method::DELETE),
        "/repos/acme/app/git/refs/heads/release-1.0",
        Reply::status(204),
    );
}

fn fake_stripe(s: &HttpsServer) {
    s.route(
        Some(Method::POST),
        "/v1/charges",
        Reply::json(200, &json!({"object": "charge", "status": "succeeded"})),
    );
}
