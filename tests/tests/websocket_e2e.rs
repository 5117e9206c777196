//! WebSockets through Cordon: an agent opens one over HTTP/1.1 (an Upgrade) and over HTTP/2
//! (an RFC 8441 extended CONNECT, translated to an HTTP/1.1 upgrade upstream); both are decided
//! as the same GET, spliced once the upstream switched, and a denied one never opens.
//!
//! The kill switch cuts an open one. Once upgraded, a WebSocket is no longer a request: its
//! bytes are spliced by a task that outlives the request and the connection's own task. A kill
//! must end it all the same, mid-flight, so the upstream sees it close while the agent is
//! frozen, instead of it living on until the agent is resumed or terminated.

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use cordon_e2e::agent_cgroup::RunningAgent;
use cordon_e2e::trail::verdict;
use cordon_e2e::world::{show, stdout};
use cordon_e2e::ws_echo::WsEcho;
use cordon_e2e::{World, require_root_or_skip, wait_until};

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
const T: Duration = Duration::from_secs(10);

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

#[test]
fn kill_cuts_an_open_websocket_mid_flight() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let addrs = [(IpAddr::V4(w.ns.v4()), PORT), (IpAddr::V6(w.ns.v6()), PORT)];
    let echo = WsEcho::start(&w.ns, &w.ca, &["allowed.test"], &addrs).unwrap();
    let port = PORT.to_string();
    let mut cmd = w.agent(
        "holder",
        &[
            env!("CARGO_BIN_EXE_ws-probe"),
            "h1",
            "allowed.test",
            &port,
            "/socket",
            "hello",
        ],
    );
    cmd.env("WS_HOLD_SECS", "60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut agent = RunningAgent::new(cmd.spawn().unwrap());
    wait_until("the agent's WebSocket is open", T, || echo.open() == 1).unwrap();
    // It stays open while the agent holds it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(echo.open(), 1, "the socket closed before the kill");

    let out = w.daemon.cordon(&["kill", "holder"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // The agent is frozen with its socket open; Cordon's side must close.
    wait_until("the upstream sees the WebSocket closed", T, || {
        echo.open() == 0
    })
    .unwrap();
    assert_eq!(echo.sockets(), 1);

    let out = w.daemon.cordon(&["terminate", "holder"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        agent.wait(T).unwrap().is_some(),
        "the agent outlived terminate"
    );
}
