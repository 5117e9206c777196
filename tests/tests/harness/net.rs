//! Namespaces: creation, routes, entering them, and cleanup (also on panic).

use super::*;

#[test]
fn namespace_comes_up_with_routes_and_leaves_nothing_behind() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let (name, host_if) = (ns.name().to_owned(), ns.host_if().to_owned());
    assert!(name.starts_with("cordon-t-"));
    assert!(ip_ok(&["netns", "list"]).contains(&name));
    let inside = ip_ok(&["-n", &name, "addr", "show", "dev", ns.ns_if()]);
    assert!(inside.contains(&ns.v4().to_string()) && inside.contains(&ns.v6().to_string()));
    let route = ip_ok(&["route", "get", &ns.v4().to_string()]);
    assert!(
        route.contains(&format!("dev {host_if}")) && !route.contains(" via "),
        "{route}"
    );
    drop(ns);
    assert!(
        !ip_ok(&["netns", "list"]).contains(&name),
        "netns {name} left behind"
    );
    let links = ip_ok(&["-o", "link", "show"]);
    assert!(
        !links.contains(&format!(" {host_if}@")) && !links.contains(&format!(" {host_if}:")),
        "veth {host_if} left behind"
    );
    assert!(!std::path::Path::new("/var/run/netns").join(&name).exists());
}

#[test]
fn namespace_and_servers_are_cleaned_up_when_a_test_panics() {
    require_root_or_skip!();
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let ns = NetNs::new().unwrap();
        let _echo = TcpEcho::start(&ns, 7).unwrap();
        tx.send((ns.name().to_owned(), ns.host_if().to_owned()))
            .unwrap();
        panic!("simulated test failure");
    })
    .join();
    assert!(outcome.is_err());
    let (name, host_if) = rx.recv_timeout(T).unwrap();
    assert!(
        !ip_ok(&["netns", "list"]).contains(&name),
        "netns {name} survived the panic"
    );
    assert!(!ip_ok(&["-o", "link", "show"]).contains(&format!(" {host_if}@")));
}

#[test]
fn servers_stop_listening_when_dropped() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let echo = TcpEcho::start(&ns, 7).unwrap();
    let addr = SocketAddr::new(ns.v4().into(), 7);
    drop(TcpStream::connect_timeout(&addr, T).unwrap());
    drop(echo);
    let refused = TcpStream::connect_timeout(&addr, T).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The port is free again for the next server.
    let again = TcpEcho::start(&ns, 7).unwrap();
    TcpStream::connect_timeout(&addr, T).unwrap();
    again.wait_for_connections(1, T).unwrap();
}

#[test]
fn parallel_namespaces_get_disjoint_addresses_on_their_own_veths() {
    require_root_or_skip!();
    let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
    assert_ne!(a.slot(), b.slot());
    assert_ne!(a.v4(), b.v4());
    assert_ne!(a.v6(), b.v6());
    assert!(
        ip_ok(&["route", "get", &b.v4().to_string()]).contains(&format!("dev {} ", b.host_if()))
    );
    assert!(
        ip_ok(&["-6", "route", "get", &a.v6().to_string()])
            .contains(&format!("dev {} ", a.host_if()))
    );
}

#[test]
fn run_in_and_block_on_execute_inside_the_namespace() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let ns_if = ns.ns_if().to_owned();
    let links = ns
        .run_in(T, || {
            std::fs::read_to_string("/proc/thread-self/net/dev").unwrap()
        })
        .unwrap();
    assert!(links.contains(&ns_if), "{links}");
    assert!(
        !links.contains("eth0"),
        "thread still sees host interfaces: {links}"
    );

    let http = HttpServer::start(&ns).unwrap();
    let target = SocketAddr::new(ns.v4().into(), 80);
    let (peer, reply) = ns
        .block_on(T, move || async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
            s.write_all(b"GET /inside HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            (
                s.local_addr().unwrap(),
                String::from_utf8_lossy(&buf).into_owned(),
            )
        })
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // A connection made inside the namespace comes from a namespace address, not the host's.
    assert_eq!(peer.ip(), IpAddr::from(ns.v4()));
    assert_eq!(http.received()[0].conn.peer.ip(), IpAddr::from(ns.v4()));
}
