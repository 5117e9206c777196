//! The recording HTTP and HTTPS upstreams, reached from the host with curl.

use super::*;

#[test]
fn host_curl_reaches_http_server_over_v4_and_v6_and_is_recorded() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let http = HttpServer::start(&ns).unwrap();
    http.route(
        Some(Method::GET),
        "/repos/o/r/pulls/1",
        Reply::json(200, &serde_json::json!({"base": {"ref": "main"}})),
    );

    let v4 = stdout_json(&curl(&[
        "-H",
        "X-Test: one",
        &format!("http://{}/hello?x=1", ns.v4()),
    ]));
    assert_eq!(
        (v4["method"].as_str(), v4["path"].as_str()),
        (Some("GET"), Some("/hello?x=1"))
    );
    let v6 = stdout_json(&curl(&[
        "-X",
        "POST",
        "--data",
        "body!",
        &format!("http://[{}]/post", ns.v6()),
    ]));
    assert_eq!(v6["method"], "POST");
    let pr = stdout_json(&curl(&[&format!("http://{}/repos/o/r/pulls/1", ns.v4())]));
    assert_eq!(pr["base"]["ref"], "main");

    assert_eq!(http.count(), 3);
    let rec = http.received();
    assert_eq!(rec[0].header("x-test"), Some("one"));
    assert_eq!(rec[0].host.as_deref(), Some(ns.v4().to_string().as_str()));
    assert_eq!(rec[0].conn.peer.ip(), IpAddr::from(ns.host_v4()));
    assert_eq!(rec[0].version, "HTTP/1.1");
    assert_eq!(
        (rec[1].method.as_str(), rec[1].body.as_slice()),
        ("POST", &b"body!"[..])
    );
    assert_eq!(rec[1].conn.peer.ip(), IpAddr::from(ns.host_v6()));
}

#[test]
fn http_keep_alive_serves_several_requests_on_one_connection() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let http = HttpServer::start(&ns).unwrap();
    let url = format!("http://{}/a", ns.v4());
    let out = curl(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects}\n",
        &url,
        &url,
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["1", "0"]
    );
    let rec = http.received();
    assert_eq!(rec.len(), 2);
    assert_eq!(
        rec[0].conn.peer, rec[1].conn.peer,
        "second request used a new connection"
    );
}

#[test]
fn https_with_test_ca_negotiates_h2_and_http11_and_echoes_headers() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let ca = TestCa::new().unwrap();
    let https = HttpsServer::start(&ns, &ca, DEFAULT_TLS_NAMES).unwrap();
    https.route(
        Some(Method::GET),
        "/repos/o/r/pulls/1",
        Reply::json(200, &serde_json::json!({"base": {"ref": "release"}})),
    );
    https.echo_header("authorization");
    let cacert = ca.pem_path();
    let cacert = cacert.to_str().unwrap();
    let resolve4 = format!("api.github.com:443:{}", ns.v4());
    let resolve6 = format!("api.github.com:443:[{}]", ns.v6());

    let pr = stdout_json(&curl(&[
        "--resolve",
        &resolve4,
        "--cacert",
        cacert,
        "https://api.github.com/repos/o/r/pulls/1",
    ]));
    assert_eq!(pr["base"]["ref"], "release");
    let echoed = stdout_json(&curl(&[
        "--http1.1",
        "--resolve",
        &resolve6,
        "--cacert",
        cacert,
        "-H",
        "Authorization: Bearer ghp_real",
        "https://api.github.com/user",
    ]));
    assert_eq!(echoed["echo"]["authorization"], "Bearer ghp_real");

    let rec = https.received();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].conn.sni.as_deref(), Some("api.github.com"));
    assert_eq!(
        (rec[0].conn.alpn.as_deref(), rec[0].version.as_str()),
        (Some("h2"), "HTTP/2.0")
    );
    assert_eq!(rec[0].host.as_deref(), Some("api.github.com"));
    assert_eq!(
        (rec[1].conn.alpn.as_deref(), rec[1].version.as_str()),
        (Some("http/1.1"), "HTTP/1.1")
    );
    assert!(rec[1].conn.tls);

    // Without the test CA the certificate must not verify, and nothing reaches the handler.
    let untrusted = curl(&["--resolve", &resolve4, "https://api.github.com/"]);
    assert_eq!(
        untrusted.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
    // A name outside the certificate is refused too.
    let wrong = curl(&[
        "--resolve",
        &format!("evil.example:443:{}", ns.v4()),
        "--cacert",
        cacert,
        "https://evil.example/",
    ]);
    assert!(!wrong.status.success());
    assert_eq!(https.count(), 2);
}
