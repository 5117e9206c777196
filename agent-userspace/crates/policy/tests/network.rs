//! tcp.connect / dns.query: hosts, cidrs, ports, and the SSRF guard.

mod common;

use common::*;
use serde_json::json;

const NET: &str = r#"
agents = ["bot"]
default = "deny"

[[rule]]
id = "github-https"
action = "tcp.connect"
hosts = ["*.github.com", "github.com"]
ports = [443]
decision = "allow"

[[rule]]
id = "public-range"
action = "tcp.connect"
cidrs = ["203.0.113.0/24", "2001:db8::/32"]
ports = [443, "8000-8100"]
decision = "allow"

[[rule]]
id = "internal-api"
action = "tcp.connect"
cidrs = ["10.20.0.0/16"]
ports = [8443]
decision = "allow"

[[rule]]
id = "broad-allow"
action = "tcp.connect"
hosts = ["*.internal.test"]
cidrs = ["0.0.0.0/0"]
decision = "allow"

[[rule]]
id = "approve-metadata"
action = "tcp.connect"
cidrs = ["169.254.169.254/32"]
decision = "approve"

[[rule]]
id = "dns-github"
action = "dns.query"
hosts = ["*.github.com", "github.com"]
decision = "allow"

[[rule]]
id = "dns-no-aaaa-for-test"
action = "dns.query"
hosts = ["*.test"]
when = 'params.type == "AAAA"'
decision = "deny"

[[rule]]
id = "dns-test"
action = "dns.query"
hosts = ["*.test"]
decision = "allow"
"#;

fn connect(ip: &str, port: i64, host: &str) -> serde_json::Value {
    json!({"ip": ip, "port": port, "host": host})
}

#[test]
fn network_table() {
    let set = set_with(&[("net.toml", NET)]);
    let cases: &[(&str, serde_json::Value, &str, &str)] = &[
        (
            "tcp.connect",
            connect("140.82.112.3", 443, "api.github.com"),
            "allow",
            "github-https",
        ),
        (
            "tcp.connect",
            connect("140.82.112.3", 443, "API.GitHub.com."),
            "allow",
            "github-https",
        ),
        (
            "tcp.connect",
            connect("140.82.112.3", 80, "api.github.com"),
            "deny",
            "default:net.toml",
        ),
        (
            "tcp.connect",
            connect("140.82.112.3", 443, "evil.com"),
            "deny",
            "default:net.toml",
        ),
        (
            "tcp.connect",
            connect("203.0.113.9", 8050, ""),
            "allow",
            "public-range",
        ),
        (
            "tcp.connect",
            connect("203.0.113.9", 8101, ""),
            "deny",
            "default:net.toml",
        ),
        (
            "tcp.connect",
            connect("2001:db8::5", 443, ""),
            "allow",
            "public-range",
        ),
        (
            "tcp.connect",
            connect("198.51.100.1", 443, ""),
            "deny",
            "default:net.toml",
        ),
        // Guarded ranges: a host glob is not enough.
        (
            "tcp.connect",
            connect("127.0.0.1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("::1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("192.168.1.5", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("fd12::1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("fe80::1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("100.64.1.1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("0.0.0.0", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("fd00:ec2::254", 80, ""),
            "deny",
            "ssrf-guard",
        ),
        // IPv4-mapped IPv6 is its IPv4 address.
        (
            "tcp.connect",
            connect("::ffff:127.0.0.1", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("::ffff:203.0.113.9", 443, ""),
            "allow",
            "public-range",
        ),
        // A cidr that names the guarded range opens it.
        (
            "tcp.connect",
            connect("10.20.3.4", 8443, ""),
            "allow",
            "internal-api",
        ),
        (
            "tcp.connect",
            connect("::ffff:10.20.3.4", 8443, ""),
            "allow",
            "internal-api",
        ),
        (
            "tcp.connect",
            connect("10.20.3.4", 22, ""),
            "deny",
            "ssrf-guard",
        ),
        // 0.0.0.0/0 contains everything but names no guarded range.
        (
            "tcp.connect",
            connect("10.99.0.1", 443, "db.internal.test"),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("198.51.100.7", 443, "db.internal.test"),
            "allow",
            "broad-allow",
        ),
        // Metadata may be named too, here only with approval.
        (
            "tcp.connect",
            connect("169.254.169.254", 80, ""),
            "approve",
            "approve-metadata",
        ),
        (
            "tcp.connect",
            connect("::ffff:169.254.169.254", 80, ""),
            "approve",
            "approve-metadata",
        ),
        // No usable ip.
        (
            "tcp.connect",
            json!({"port": 443, "host": "api.github.com"}),
            "deny",
            "ssrf-guard",
        ),
        (
            "tcp.connect",
            connect("not-an-ip", 443, "api.github.com"),
            "deny",
            "ssrf-guard",
        ),
        // DNS.
        (
            "dns.query",
            json!({"name": "api.github.com", "type": "A"}),
            "allow",
            "dns-github",
        ),
        (
            "dns.query",
            json!({"name": "db.test", "type": "AAAA"}),
            "deny",
            "dns-no-aaaa-for-test",
        ),
        (
            "dns.query",
            json!({"name": "db.test", "type": "A"}),
            "allow",
            "dns-test",
        ),
        (
            "dns.query",
            json!({"name": "example.org", "type": "A"}),
            "deny",
            "default:net.toml",
        ),
    ];
    for (action, p, want, rule) in cases {
        let d = decide(&set, &["bot"], action, p.clone());
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref()),
            (*want, *rule),
            "{action} {p}"
        );
    }
}

#[test]
fn ssrf_guard_holds_under_default_allow() {
    let open = "agents = [\"bot\"]\ndefault = \"allow\"\n";
    let set = set_with(&[("open.toml", open)]);
    let d = decide(
        &set,
        &["bot"],
        "tcp.connect",
        connect("169.254.169.254", 80, ""),
    );
    assert_eq!(
        (short(&d.verdict), d.rule_id.as_ref()),
        ("deny", "ssrf-guard")
    );
    assert!(d.reason.contains("cloud metadata"), "{}", d.reason);
    let d = decide(
        &set,
        &["bot"],
        "tcp.connect",
        connect("93.184.216.34", 443, "example.com"),
    );
    assert_eq!(
        (short(&d.verdict), d.rule_id.as_ref()),
        ("allow", "default:open.toml")
    );
}
