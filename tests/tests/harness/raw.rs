//! TCP echo, UDP sink and the test DNS upstream.

use super::*;

#[test]
fn tcp_echo_echoes_and_counts_over_v4_and_v6() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let echo = TcpEcho::start(&ns, 7).unwrap();
    for ip in [IpAddr::from(ns.v4()), IpAddr::from(ns.v6())] {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, 7), T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
    }
    echo.wait_for_connections(2, T).unwrap();
    assert_eq!((echo.connections(), echo.bytes()), (2, 8));
}

#[test]
fn udp_sink_counts_datagrams_from_the_host() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let sink = UdpSink::start(&ns, 9999).unwrap();
    assert_eq!(sink.datagrams(), 0);
    let s4 = UdpSocket::bind("0.0.0.0:0").unwrap();
    let s6 = UdpSocket::bind("[::]:0").unwrap();
    for _ in 0..3 {
        s4.send_to(b"x", (ns.v4(), 9999)).unwrap();
    }
    s6.send_to(b"yy", (ns.v6(), 9999)).unwrap();
    sink.wait_for_datagrams(4, T).unwrap();
    assert_eq!((sink.datagrams(), sink.bytes()), (4, 5));
    assert!(
        sink.sources()
            .iter()
            .any(|s| s.ip() == IpAddr::from(ns.host_v6()))
    );
}

#[tokio::test]
async fn test_dns_answers_table_names_nxdomain_otherwise_and_counts() {
    require_root_or_skip!();
    let v4: IpAddr = "203.0.113.10".parse().unwrap();
    let v6: IpAddr = "2001:db8::10".parse().unwrap();
    let dns =
        TestDns::start_with(&[("allowed.test", &[v4, v6]), ("api.github.com", &[v4])]).unwrap();
    assert!(dns.addr().ip().is_loopback());

    let a = dns_query(dns.addr(), "allowed.test", RecordType::A, T)
        .await
        .unwrap();
    assert_eq!(
        (a.response_code, a.addrs.as_slice()),
        (ResponseCode::NoError, &[v4][..])
    );
    let aaaa = dns_query(dns.addr(), "ALLOWED.test.", RecordType::AAAA, T)
        .await
        .unwrap();
    assert_eq!(aaaa.addrs, [v6]);
    assert!(aaaa.message.authoritative());
    let nodata = dns_query(dns.addr(), "api.github.com", RecordType::AAAA, T)
        .await
        .unwrap();
    assert_eq!(
        (nodata.response_code, nodata.addrs.len()),
        (ResponseCode::NoError, 0)
    );
    let nx = dns_query(dns.addr(), "denied.test", RecordType::A, T)
        .await
        .unwrap();
    assert_eq!(nx.response_code, ResponseCode::NXDomain);
    let tcp = dns_query_tcp(dns.addr(), "allowed.test", RecordType::A, T)
        .await
        .unwrap();
    assert_eq!(tcp.addrs, [v4]);

    dns.set("denied.test", &[v6]);
    let now = dns_query(dns.addr(), "denied.test", RecordType::AAAA, T)
        .await
        .unwrap();
    assert_eq!(now.addrs, [v6]);
    assert_eq!(dns.queries("allowed.test"), 3);
    assert_eq!(dns.queries("denied.test"), 2);
    assert_eq!(dns.total_queries(), 6);
}
