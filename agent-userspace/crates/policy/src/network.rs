//! Network match fields (`hosts`, `cidrs`, `ports`) and the SSRF guard.
//!
//! The guard exists because an agent that may reach "the internet" must not
//! thereby reach the host's own services, the private network or a cloud
//! metadata endpoint: those need an allow rule that names the range itself.

use crate::glob::Glob;
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::LazyLock;

/// Address ranges an agent may only reach when an allow rule names them.
/// The order matters: the first containing range names the category, so
/// the metadata addresses come before the ranges that contain them.
const SPECIAL: &[(&str, &str)] = &[
    ("169.254.169.254/32", "cloud metadata"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("fc00::/7", "private"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("100.64.0.0/10", "CGNAT"),
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
];

static SPECIAL_NETS: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    SPECIAL
        .iter()
        .filter_map(|(net, what)| Some((net.parse().ok()?, *what)))
        .collect()
});

fn special_nets() -> impl Iterator<Item = (IpNet, &'static str)> {
    SPECIAL_NETS.iter().copied()
}

/// Treats an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4
/// address it carries, so it meets the same rules.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The category of a guarded address, or None for an ordinary one.
pub(crate) fn special_category(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical_ip(ip);
    special_nets()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, what)| what)
}

/// Whether a `cidrs` entry lies wholly inside a guarded range, and so may
/// open it: `10.0.0.0/8` does, `0.0.0.0/0` does not.
fn names_special(net: &IpNet) -> bool {
    special_nets().any(|(special, _)| special.contains(net))
}

#[derive(Debug, Clone)]
pub(crate) struct Cidr {
    net: IpNet,
    names_special: bool,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "`{text}`: not a CIDR (e.g. \"203.0.113.0/24\", \"2001:db8::/32\")"
                    ));
                }
            },
        };
        let net = net.trunc();
        Ok(Cidr {
            names_special: names_special(&net),
            net,
        })
    }
}

/// Parses one `ports` entry: a number or a `"LOW-HIGH"` range.
pub(crate) fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{text}`: expected a port 1-65535 or a range \"LOW-HIGH\"");
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (low.trim(), high.trim()),
        None => (text.trim(), text.trim()),
    };
    let low: u16 = low.parse().map_err(|_| bad())?;
    let high: u16 = high.parse().map_err(|_| bad())?;
    if low == 0 || low > high {
        return Err(bad());
    }
    Ok((low, high))
}

/// The network fields of one rule; an absent field matches everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetMatch {
    pub(crate) hosts: Vec<Glob>,
    pub(crate) cidrs: Vec<Cidr>,
    pub(crate) ports: Vec<(u16, u16)>,
}

/// The network facts of one request, read once from its params.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NetFacts<'a> {
    pub(crate) host: Option<&'a str>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) port: Option<i64>,
}

impl<'a> NetFacts<'a> {
    /// `dns.query` names its host `name`; everything else `host`.
    pub(crate) fn from_params(action: &str, params: &'a Map<String, Value>) -> NetFacts<'a> {
        let host_key = if action == "dns.query" {
            "name"
        } else {
            "host"
        };
        NetFacts {
            host: params.get(host_key).and_then(Value::as_str),
            ip: params
                .get("ip")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
                .map(canonical_ip),
            port: params.get("port").and_then(Value::as_i64),
        }
    }
}

impl NetMatch {
    /// None when every present field matches; otherwise which one did not.
    pub(crate) fn mismatch(&self, facts: &NetFacts<'_>) -> Option<&'static str> {
        if !self.hosts.is_empty() {
            let host = facts.host.map(|h| h.strip_suffix('.').unwrap_or(h));
            match host {
                Some(h) if self.hosts.iter().any(|g| g.matches(h)) => {}
                _ => return Some("hosts"),
            }
        }
        if !self.cidrs.is_empty() {
            match facts.ip {
                Some(ip) if self.cidrs.iter().any(|c| c.net.contains(&ip)) => {}
                _ => return Some("cidrs"),
            }
        }
        if !self.ports.is_empty() {
            match facts.port {
                Some(p)
                    if self
                        .ports
                        .iter()
                        .any(|&(lo, hi)| p >= lo as i64 && p <= hi as i64) => {}
                _ => return Some("ports"),
            }
        }
        None
    }

    /// Whether this rule opens a guarded address: one of its `cidrs` entries
    /// lies inside a guarded range and contains the address.
    pub(crate) fn opens_guarded(&self, ip: IpAddr) -> bool {
        self.cidrs
            .iter()
            .any(|c| c.names_special && c.net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_address_table() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("::1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("fd12:3456::1", Some("private")),
            ("169.254.1.1", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("100.64.0.1", Some("CGNAT")),
            ("100.128.0.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("169.254.169.254", Some("cloud metadata")),
            ("fd00:ec2::254", Some("cloud metadata")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:8.8.8.8", None),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(special_category(ip), want, "{ip}");
        }
    }

    #[test]
    fn only_cidrs_inside_a_guarded_range_open_it() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let open = |cidr: &str| {
            NetMatch {
                cidrs: vec![Cidr::parse(cidr).unwrap()],
                ..Default::default()
            }
            .opens_guarded(ip)
        };
        assert!(open("10.0.0.0/8"));
        assert!(open("10.0.0.5"));
        assert!(!open("0.0.0.0/0"));
        assert!(!open("10.0.1.0/24"));
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_port_range("443"), Ok((443, 443)));
        assert_eq!(parse_port_range("8000-8100"), Ok((8000, 8100)));
        for bad in ["0", "8100-8000", "http", "70000", "1-"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }
}
