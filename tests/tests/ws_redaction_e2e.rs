//! Attacks on an injected credential through a WebSocket whose upstream hands the handshake
//! back. The agent opens the socket with its placeholder; Cordon puts the real token on the
//! handshake; the server answers a message with the `Authorization` header it got, cut into
//! 7-byte frames with a ping (carrying it whole) between the first two. After the switch the
//! bytes are no longer HTTP, so scrubbing the answer's headers and body is not enough:
//! - the frames reach the agent scrubbed, over HTTP/1.1 and HTTP/2 alike;
//! - the agent's offer of `permessage-deflate` does not reach the server (a compressed
//!   message would hide the token from any search), and a server that switches with it
//!   anyway gives the agent no socket;
//! - an upgrade to anything but a WebSocket gets no credential at all.
//!
//! Each test asserts that no piece of the token reached the agent.

use std::net::IpAddr;
use std::time::Duration;

use cordon_e2e::secrets::{assert_no_leak, random_alnum};
use cordon_e2e::world::{all_output, show, stdout};
use cordon_e2e::ws_reflect::WsReflect;
use cordon_e2e::{World, read_trail_when, require_root_or_skip};

const RULES: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"

[[rule]]
id = "socket"
action = "wsr.*"
decision = "allow"
"#;

const CONNECTOR: &str = r#"
name = "wsr"
hosts = ["allowed.test"]

[credential]
scheme = "bearer"
placeholder_env = ["WSR_TOKEN"]

[[route]]
method = "GET"
path = "/socket"
action = "wsr.socket"

[[route]]
method = "GET"
path = "/raw"
action = "wsr.raw"
"#;

const PORT: u16 = 8450;

/// A world whose policy binds connector `wsr` to a vault entry holding `token`, with the
/// reflecting server on `allowed.test`.
fn world(token: &str, insist_deflate: bool) -> (World, WsReflect) {
    let w = World::start(RULES).unwrap();
    w.policies.write("connectors/wsr.toml", CONNECTOR).unwrap();
    w.bind_credentials(RULES, &[("wsr", token)]).unwrap();
    let addrs = [(IpAddr::V4(w.ns.v4()), PORT), (IpAddr::V6(w.ns.v6()), PORT)];
    let server = WsReflect::start(&w.ns, &w.ca, &["allowed.test"], &addrs, insist_deflate).unwrap();
    (w, server)
}

/// `ws-probe MODE` as agent `bot`, offering its placeholder and `permessage-deflate`, asking
/// the server for the `Authorization` it got.
fn probe(w: &World, mode: &str) -> std::process::Output {
    let script = format!(
        "WS_HEADERS=\"$(printf 'Authorization: Bearer %s\\nSec-WebSocket-Extensions: \
         permessage-deflate; client_max_window_bits' \"$WSR_TOKEN\")\" exec {} {mode} \
         allowed.test {PORT} /socket authorization",
        env!("CARGO_BIN_EXE_ws-probe")
    );
    w.run("bot", &["/bin/sh", "-c", &script]).unwrap()
}

#[test]
fn a_websocket_that_reflects_the_handshake_hands_the_agent_no_piece_of_the_token() {
    require_root_or_skip!();
    let token = format!("wt_{}", random_alnum(36));
    let (w, server) = world(&token, false);
    for mode in ["h1", "h2"] {
        let out = probe(&w, mode);
        assert!(out.status.success(), "{mode}: {}", show(&out));
        let answer = stdout(&out);
        assert_eq!(
            answer.trim(),
            format!("Bearer [REDACTED]{}", "*".repeat(token.len() - 10)),
            "{mode}"
        );
        assert_no_leak(
            &format!("what the agent saw ({mode})"),
            &all_output(&out),
            &[&token],
        );
    }
    // The server got the real token, and no offer of an extension.
    let seen = server.handshakes();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for hs in seen {
        assert_eq!(hs.authorization, Some(format!("Bearer {token}")));
        assert_eq!(
            hs.extensions, None,
            "the agent's offer of deflate was dropped"
        );
    }
}

#[test]
fn a_server_that_switches_with_compression_anyway_gives_the_agent_no_socket() {
    require_root_or_skip!();
    let token = format!("wt_{}", random_alnum(36));
    let (w, server) = world(&token, true);
    let out = probe(&w, "h1");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&all_output(&out)).contains("502"),
        "{}",
        show(&out)
    );
    assert_no_leak("what the agent saw", &all_output(&out), &[&token]);
    assert_eq!(server.handshakes().len(), 1);
    let trail = read_trail_when(w.daemon.state_dir(), "bot", Duration::from_secs(10), |t| {
        t.matching("wsr.socket", &[])
            .first()
            .is_some_and(|r| !t.outcome_of(r.seq).is_empty())
    })
    .unwrap();
    let error = trail.failure_of(trail.one("wsr.socket", &[]).seq);
    assert!(
        error.contains("permessage-deflate") && error.contains("withheld"),
        "{error}"
    );
}

#[test]
fn an_upgrade_to_anything_but_a_websocket_gets_no_credential() {
    require_root_or_skip!();
    let token = format!("wt_{}", random_alnum(36));
    let (w, server) = world(&token, false);
    let script = format!(
        "/usr/bin/curl -sS -i --http1.1 --max-time 10 -H 'Connection: Upgrade' -H 'Upgrade: tcp' \
         -H \"Authorization: Bearer $WSR_TOKEN\" https://allowed.test:{PORT}/raw"
    );
    let out = w.run("bot", &["/bin/sh", "-c", &script]).unwrap();
    let text = stdout(&out);
    assert!(text.contains(" 403"), "{}", show(&out));
    assert!(text.contains(r#""rule":"credential""#), "{text}");
    assert!(text.contains("WebSocket"), "{text}");
    assert_no_leak("what the agent saw", &all_output(&out), &[&token]);
    assert!(server.handshakes().is_empty(), "nothing reached the server");
}
