//! WebSockets through Cordon: an agent opens one over HTTP/1.1 (an Upgrade) and over HTTP/2
//! (an RFC 8441 extended CONNECT, translated to an HTTP/1.1 upgrade upstream); both are decided
//! as the same GET, spliced once the upstream switched, and a denied one never opens.

use std::net::IpAddr;

use cordon_e2e::trail::verdict;
use cordon_e2e::world::{show, stdout};
use cordon_e2e::ws_echo::WsEcho;
use cordon_e2e::{World, require_root_or_skip};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "socket"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

const PORT: u16 = 8450;

fn probe(w: &World, mode: &str, host: &str, message: &str) -> std::process::Output {
    let port = PORT.to_string();
    w.run(
        "bot",
        &[
            env!("CARGO_BIN_EXE_ws-probe"),
            mode,
            host,
            &port,
            "/socket",
            message,
        ],
    )
    .unwrap()
}

#[test]
fn websockets_open_over_http1_and_http2_and_are_decided_as_the_same_get() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let addrs = [(IpAddr::V4(w.ns.v4()), PORT), (IpAddr::V6(w.ns.v6()), PORT)];
    let echo = WsEcho::start(&w.ns, &w.ca, &["allowed.test", "denied.test"], &addrs).unwrap();

    for (mode, message) in [("h1", "over-http1"), ("h2", "over-http2")] {
        let out = probe(&w, mode, "allowed.test", message);
        assert!(out.status.success(), "{mode}: {}", show(&out));
        assert_eq!(stdout(&out).trim(), format!("echo:{message}"), "{mode}");
    }
    assert_eq!(echo.sockets(), 2);

    // Refused before anything reaches the upstream, whichever version asked.
    for mode in ["h1", "h2"] {
        let out = probe(&w, mode, "denied.test", "never");
        assert!(!out.status.success(), "{mode}: {}", show(&out));
    }
    assert_eq!(echo.sockets(), 2);

    let trail = w.trail().unwrap();
    let gets: Vec<_> = trail
        .matching("http.request", &[])
        .into_iter()
        .filter(|r| r.http_path.as_deref() == Some("/socket"))
        .collect();
    assert_eq!(gets.len(), 4, "{trail}");
    for r in &gets {
        assert_eq!(r.http_method.as_deref(), Some("GET"), "{r:?}");
    }
    let allowed = gets.iter().filter(|r| verdict(r) == "allow").count();
    assert_eq!(allowed, 2, "{trail}");
}
