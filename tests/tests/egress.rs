//! Forced egress, end to end: real agents in real cgroups behind the real daemon. Every test
//! checks both what reached the upstream and what the audit trail says was decided.

use std::time::{Duration, Instant};

use cordon_e2e::probes::{DNS_PROBE, SOCKET_PROBE, TCP_PROBE, UDP_PROBE, outcome};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::ALLOWED_TEST_ONLY;
use cordon_e2e::world::{PYTHON, show, stdout};
use cordon_e2e::{TcpEcho, UdpSink, run_with_timeout};
use cordon_e2e::{World, require_root_or_skip};
use serde_json::json;

const POLICY: &str = ALLOWED_TEST_ONLY;

fn curl(url: &str) -> Vec<&str> {
    vec!["/usr/bin/curl", "-sS", "--max-time", "5", url]
}

#[test]
fn allowed_name_reaches_server_and_denied_name_fails_fast() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();

    let ok = w.run("bot", &curl("http://allowed.test/hello")).unwrap();
    assert!(ok.status.success(), "{}", show(&ok));
    let body: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(body["path"], "/hello", "{}", show(&ok));
    assert_eq!(w.http.count(), 1);
    assert_eq!(w.http.received()[0].host.as_deref(), Some("allowed.test"));

    let started = Instant::now();
    let denied = w.run("bot", &curl("http://denied.test/hello")).unwrap();
    let took = started.elapsed();
    assert!(!denied.status.success(), "{}", show(&denied));
    assert!(took < Duration::from_secs(3), "denial took {took:?}");
    assert_eq!(w.http.count(), 1, "the server saw the denied request");
    assert_eq!(
        w.dns.queries("denied.test"),
        0,
        "a denied name was resolved upstream"
    );

    let t = w.trail().unwrap().of_chain("bot");
    let q = t.one(
        "dns.query",
        &[("name", json!("allowed.test")), ("type", json!("A"))],
    );
    assert_eq!(verdict(q), "allow", "{t}");
    let req = t.one(
        "http.request",
        &[("host", json!("allowed.test")), ("path", json!("/hello"))],
    );
    assert_eq!((verdict(req), rule(req)), ("allow", "http-allowed"), "{t}");
    let dq = t.matching("dns.query", &[("name", json!("denied.test"))]);
    assert!(!dq.is_empty(), "no decision for denied.test:\n{t}");
    assert!(dq.iter().all(|r| verdict(r) == "deny"), "{t}");
}

#[test]
fn a_process_outside_the_agent_cgroup_is_not_intercepted() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // The test itself, on the host: straight to the server, by address, with any Host.
    let mut s = std::net::TcpStream::connect((w.ns.v4(), 80)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /direct HTTP/1.1\r\nHost: denied.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(w.http.count(), 1);
    assert_eq!(w.http.received()[0].path, "/direct");
    let t = w.trail().unwrap();
    assert!(t.is_empty(), "the host's own traffic was decided:\n{t}");
}

/// [`POLICY`] plus every `tcp.connect` allowed: what is refused then is refused by the guards.
fn policy_allowing_connects() -> String {
    format!(
        "{POLICY}\n[[rule]]\nid = \"connect-any\"\naction = \"tcp.connect\"\ndecision = \"allow\"\n"
    )
}

#[test]
fn udp_to_ports_other_than_53_is_refused_inside_the_agent() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let sink = UdpSink::start(&w.ns, 9999).unwrap();
    for host in [w.ns.v4().to_string(), w.ns.v6().to_string()] {
        let out = w.python("bot", UDP_PROBE, &[&host, "9999"]).unwrap();
        let text = stdout(&out);
        assert_eq!(
            outcome(&text, "sendto"),
            Some("EPERM"),
            "{host}: {}",
            show(&out)
        );
        assert_eq!(
            outcome(&text, "connect"),
            Some("EPERM"),
            "{host}: {}",
            show(&out)
        );
    }
    // The same datagram from the host arrives, so the sink would have counted a leak.
    let host_sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    host_sock.send_to(b"control", (w.ns.v4(), 9999)).unwrap();
    sink.wait_for_datagrams(1, Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        sink.datagrams(),
        1,
        "agent datagrams leaked: {:?}",
        sink.sources()
    );
}

#[test]
fn raw_sockets_are_refused_even_to_a_root_agent() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // Root has CAP_NET_RAW, so EPERM inside the agent can only come from Cordon.
    let host = run_with_timeout(
        std::process::Command::new(PYTHON).args(["-c", SOCKET_PROBE]),
        Duration::from_secs(10),
    )
    .unwrap();
    let host_text = stdout(&host);
    for kind in ["raw4", "raw6", "rawtcp", "packet", "tcp"] {
        assert_eq!(
            outcome(&host_text, kind),
            Some("ok"),
            "host: {}",
            show(&host)
        );
    }
    let out = run_with_timeout(&mut root_agent(&w, SOCKET_PROBE), Duration::from_secs(30)).unwrap();
    let text = stdout(&out);
    for kind in ["raw4", "raw6", "rawtcp"] {
        assert_eq!(
            outcome(&text, kind),
            Some("EPERM"),
            "{kind}: {}",
            show(&out)
        );
    }
    assert_eq!(outcome(&text, "tcp"), Some("ok"), "{}", show(&out));
}

#[test]
fn packet_sockets_are_refused_even_to_a_root_agent() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let out = run_with_timeout(&mut root_agent(&w, SOCKET_PROBE), Duration::from_secs(30)).unwrap();
    assert_eq!(
        outcome(&stdout(&out), "packet"),
        Some("EPERM"),
        "{}",
        show(&out)
    );
}

/// `cordon run --allow-root` (no `--user`): the agent keeps root and CAP_NET_RAW.
fn root_agent(w: &World, script: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(cordon_e2e::cordon_bin());
    cmd.arg("run")
        .args(["--agent", "rooty", "--state-dir"])
        .arg(w.daemon.state_dir())
        .args(["--allow-root", "--", PYTHON, "-c", script])
        .env_remove("SUDO_UID")
        .current_dir("/");
    cmd
}

#[test]
fn dns_sent_to_another_resolver_is_answered_and_decided_by_cordon() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // A "resolver" the agent picks itself; nothing may reach it.
    let resolver = w.ns.v4_at(2);
    let sink = UdpSink::start_on(&w.ns, &[(resolver.into(), 53)]).unwrap();
    let out = w
        .python(
            "bot",
            DNS_PROBE,
            &[&resolver.to_string(), "allowed.test", "denied.test"],
        )
        .unwrap();
    let text = stdout(&out);
    let allowed = outcome(&text, "allowed.test").unwrap_or("");
    assert!(allowed.starts_with("rcode=0 answers=1"), "{}", show(&out));
    assert!(allowed.contains("id_ok=True"), "{}", show(&out));
    let denied = outcome(&text, "denied.test").unwrap_or("");
    assert!(
        denied.starts_with("rcode=5 answers=0"),
        "REFUSED expected: {}",
        show(&out)
    );
    assert_eq!(w.dns.queries("allowed.test"), 1);
    assert_eq!(
        w.dns.queries("denied.test"),
        0,
        "denied name reached the upstream"
    );
    assert_eq!(sink.datagrams(), 0, "the agent's own resolver was reached");

    let t = w.trail().unwrap().of_chain("bot");
    let a = t.one("dns.query", &[("name", json!("allowed.test"))]);
    assert_eq!((verdict(a), rule(a)), ("allow", "dns-allowed"), "{t}");
    let d = t.one("dns.query", &[("name", json!("denied.test"))]);
    assert_eq!(verdict(d), "deny", "{t}");
}

#[test]
fn ipv6_connects_are_decided_and_reach_only_when_allowed() {
    require_root_or_skip!();
    let probe_ns = cordon_e2e::NetNs::new().unwrap();
    let (ok_ip, no_ip) = (probe_ns.v6_at(2), probe_ns.v6_at(3));
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"connect-v6\"\naction = \"tcp.connect\"\n\
         cidrs = [\"{ok_ip}/128\"]\ndecision = \"allow\"\n"
    );
    let w = World::start(&policy).unwrap();
    let ok_echo = TcpEcho::start_on(&probe_ns, &[(ok_ip.into(), 7000)]).unwrap();
    let no_echo = TcpEcho::start_on(&probe_ns, &[(no_ip.into(), 7000)]).unwrap();
    let mapped_echo = TcpEcho::start_on(&probe_ns, &[(probe_ns.v4_at(2).into(), 7000)]).unwrap();
    let (ok, no) = (format!("[{ok_ip}]:7000"), format!("[{no_ip}]:7000"));
    let mapped = format!("[::ffff:{}]:7000", probe_ns.v4_at(2));
    let out = w.python("bot", TCP_PROBE, &[&ok, &no, &mapped]).unwrap();
    let text = stdout(&out);
    assert_eq!(outcome(&text, &ok), Some("ok ping"), "{}", show(&out));
    assert!(
        !outcome(&text, &no).unwrap_or("ok").starts_with("ok"),
        "{}",
        show(&out)
    );
    assert!(
        !outcome(&text, &mapped).unwrap_or("ok").starts_with("ok"),
        "{}",
        show(&out)
    );
    assert_eq!(ok_echo.connections(), 1);
    assert_eq!(
        no_echo.connections(),
        0,
        "denied v6 destination was reached"
    );
    assert_eq!(
        mapped_echo.connections(),
        0,
        "v4-mapped destination was reached"
    );

    let t = w.trail().unwrap().of_chain("bot");
    let a = t.one(
        "tcp.connect",
        &[("ip", json!(ok_ip.to_string())), ("port", json!(7000))],
    );
    assert_eq!((verdict(a), rule(a)), ("allow", "connect-v6"), "{t}");
    let d = t.one(
        "tcp.connect",
        &[("ip", json!(no_ip.to_string())), ("port", json!(7000))],
    );
    assert_eq!(verdict(d), "deny", "{t}");
}

#[test]
fn loopback_services_are_refused_by_the_ssrf_guard() {
    require_root_or_skip!();
    let w = World::start(&policy_allowing_connects()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    let out = w.python("bot", TCP_PROBE, &[&target]).unwrap();
    assert!(
        !outcome(&stdout(&out), &target)
            .unwrap_or("ok")
            .starts_with("ok"),
        "{}",
        show(&out)
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the loopback listener was reached: {other:?}"),
    }
    let t = w.trail().unwrap().of_chain("bot");
    let d = t.one(
        "tcp.connect",
        &[("ip", json!("127.0.0.1")), ("port", json!(port))],
    );
    assert_eq!((verdict(d), rule(d)), ("deny", "ssrf-guard"), "{t}");
}

#[test]
fn the_daemons_own_proxy_port_is_refused() {
    require_root_or_skip!();
    let w = World::start(&policy_allowing_connects()).unwrap();
    let port = w.status().unwrap()["proxy_port"].as_u64().unwrap();
    let target = format!("127.0.0.1:{port}");
    let out = w.python("bot", TCP_PROBE, &[&target]).unwrap();
    assert!(
        !outcome(&stdout(&out), &target)
            .unwrap_or("ok")
            .starts_with("ok"),
        "{}",
        show(&out)
    );
    let t = w.trail().unwrap().of_chain("bot");
    let d = t.one(
        "tcp.connect",
        &[("ip", json!("127.0.0.1")), ("port", json!(port))],
    );
    assert_eq!(verdict(d), "deny", "{t}");
    assert_eq!(rule(d), "cordon-listener", "{t}");
}

/// TCP Fast Open: `sendto(MSG_FASTOPEN)` on an unconnected TCP socket connects and sends in one
/// call, never calling connect(). Prints `tfo ok N` (N bytes echoed back), or the errno.
const TFO_PROBE: &str = r#"
import socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
try:
    # Blocking, so that sendto waits for the handshake (a timeout would make
    # the socket non-blocking, and sendto answer EINPROGRESS without a cookie).
    s.sendto(payload.encode(), socket.MSG_FASTOPEN, (host, port))
    s.settimeout(3)
    print("tfo ok", len(s.recv(256)))
except OSError as e:
    print("tfo", e.errno)
"#;

/// Fast Open's connect happens inside sendto(): the connect hooks still see it, so the
/// connection lands on Cordon's proxy, which refuses the host, and the data never leaves.
#[test]
fn tcp_fast_open_data_is_decided_like_a_connect_and_never_reaches_a_denied_host() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let echo = TcpEcho::start(&w.ns, 9998).unwrap();
    // The same probe from the host reaches the echo: the technique works here.
    let host = run_with_timeout(
        std::process::Command::new(PYTHON).args([
            "-c",
            TFO_PROBE,
            &w.ns.v4().to_string(),
            "9998",
            "control",
        ]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(stdout(&host).contains("tfo ok 7"), "host: {}", show(&host));
    let (connections, bytes) = (echo.connections(), echo.bytes());
    assert_eq!((connections, bytes), (1, 7));
    let marker = format!("MARKER-{}", cordon_e2e::secrets::random_alnum(16));
    for target in [w.ns.v4().to_string(), w.ns.v6().to_string()] {
        let out = w
            .python("bot", TFO_PROBE, &[&target, "9998", &marker])
            .unwrap();
        assert!(
            !stdout(&out).contains("tfo ok"),
            "{target}: the agent's fast-open data was echoed back: {}",
            show(&out)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        (echo.connections(), echo.bytes()),
        (connections, bytes),
        "an agent's fast-open connection reached the host"
    );
    let t = w.trail().unwrap().of_chain("bot");
    for ip in [w.ns.v4().to_string(), w.ns.v6().to_string()] {
        let d = t.one("tcp.connect", &[("ip", json!(ip)), ("port", json!(9998))]);
        assert_eq!(verdict(d), "deny", "{t}");
    }
}
