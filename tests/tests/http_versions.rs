//! HTTP versions are negotiated on each side independently: an agent's
//! HTTP/2 request reaches an HTTP/1.1-only upstream, an HTTP/1.1 request
//! reaches an HTTP/2-only one, and curl's defaults work against all three
//! kinds of upstream. The upstream's record says which protocol it spoke.

use std::net::IpAddr;

use cordon_e2e::http::Speaks;
use cordon_e2e::tls::DEFAULT_TLS_NAMES;
use cordon_e2e::trail::verdict;
use cordon_e2e::world::{show, stdout};
use cordon_e2e::{HttpsServer, World, require_root_or_skip};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"
"#;

fn upstream(w: &World, port: u16, speaks: Speaks) -> HttpsServer {
    let addrs = [(IpAddr::V4(w.ns.v4()), port), (IpAddr::V6(w.ns.v6()), port)];
    HttpsServer::start_speaking(&w.ns, &w.ca, DEFAULT_TLS_NAMES, &addrs, speaks).unwrap()
}

#[test]
fn every_client_version_reaches_every_upstream_version_through_cordon() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let upstreams = [
        (8441, Speaks::Http1Only, "http/1.1"),
        (8442, Speaks::Http2Only, "h2"),
        (8443, Speaks::Both, "h2"),
    ];
    let servers: Vec<HttpsServer> = upstreams
        .iter()
        .map(|(port, speaks, _)| upstream(&w, *port, *speaks))
        .collect();
    // curl's default offers h2 and http/1.1; the others pin one version.
    let clients: [(&str, &[&str], &str); 3] = [
        ("curl default", &[], "2"),
        ("curl --http1.1", &["--http1.1"], "1.1"),
        ("curl --http2", &["--http2"], "2"),
    ];
    for ((port, speaks, upstream_alpn), server) in upstreams.iter().zip(&servers) {
        for (name, flags, client_version) in clients {
            server.clear();
            let url = format!("https://api.github.com:{port}/repos/o/r/issues");
            let mut cmd = vec![
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"title":"versions"}"#,
            ];
            cmd.extend_from_slice(flags);
            cmd.push(&url);
            let out = w.run("bot", &cmd).unwrap();
            assert_eq!(
                stdout(&out).trim(),
                format!("200 {client_version}"),
                "{name} -> {speaks:?}: {}",
                show(&out)
            );
            let got = server.received();
            assert_eq!(got.len(), 1, "{name} -> {speaks:?}: {got:?}");
            assert_eq!(
                got[0].conn.alpn.as_deref(),
                Some(*upstream_alpn),
                "{name} -> {speaks:?}"
            );
            assert_eq!(
                got[0].body, br#"{"title":"versions"}"#,
                "{name} -> {speaks:?}"
            );
            assert_eq!(
                got[0].host.as_deref(),
                Some(format!("api.github.com:{port}").as_str())
            );
        }
    }
    // Every request was decided as the action it is, whatever the versions.
    let trail = w.trail().unwrap();
    let created = trail.matching("github.issue.create", &[("title", "versions".into())]);
    assert_eq!(created.len(), upstreams.len() * clients.len());
    assert!(created.iter().all(|r| verdict(r) == "allow"));
}
