//! The battery's "outside world", on the host itself: a network namespace
//! joined by a veth pair, holding every address the probes aim at, from a
//! benchmarking range (198.18.0.0/15, RFC 2544) and the IPv6 documentation
//! range, never routed on the internet; every route to them is checked to
//! leave through the veth before a probe runs. The metadata and private addresses get /32
//! routes through the veth for the duration: more specific than any route
//! the host has, and gone when the veth is.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

pub const HOST_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 1);
pub const TARGET_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 2);
/// The resolver the agent picks itself.
pub const RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 3);
/// The throwaway daemon's upstream resolver: a sink too, so a denied name
/// forwarded upstream counts as an escape.
pub const UPSTREAM_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 4);
pub const HOST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc0d0, 0, 0, 0, 0, 1);
pub const TARGET_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc0d0, 0, 0, 0, 0, 2);
pub const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const PRIVATE_V4: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 254);

/// A live namespace; dropping it deletes the namespace, the veth pair and
/// with them the routes.
pub struct NetNs {
    pub name: String,
    pub host_if: String,
}

impl NetNs {
    pub fn create() -> anyhow::Result<NetNs> {
        let pid = std::process::id();
        let ns = NetNs {
            name: format!("cordon-doctor-{pid}"),
            host_if: format!("cdh{pid}"),
        };
        let ns_if = format!("cdn{pid}");
        ip(&["netns", "add", &ns.name])?;
        // From here on Drop removes whatever was made.
        let n = ns.name.as_str();
        let h = ns.host_if.as_str();
        ip(&[
            "link", "add", h, "type", "veth", "peer", "name", &ns_if, "netns", n,
        ])?;
        ip(&["addr", "add", &format!("{HOST_V4}/29"), "dev", h])?;
        ip(&[
            "-6",
            "addr",
            "add",
            &format!("{HOST_V6}/64"),
            "dev",
            h,
            "nodad",
        ])?;
        ip(&["link", "set", h, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        for a in [TARGET_V4, RESOLVER_V4, UPSTREAM_V4] {
            ip(&["-n", n, "addr", "add", &format!("{a}/29"), "dev", &ns_if])?;
        }
        for a in [METADATA_V4, PRIVATE_V4] {
            ip(&["-n", n, "addr", "add", &format!("{a}/32"), "dev", &ns_if])?;
        }
        ip(&[
            "-n",
            n,
            "-6",
            "addr",
            "add",
            &format!("{TARGET_V6}/64"),
            "dev",
            &ns_if,
            "nodad",
        ])?;
        ip(&["-n", n, "link", "set", &ns_if, "up"])?;
        for a in [METADATA_V4, PRIVATE_V4] {
            ip(&[
                "route",
                "add",
                &format!("{a}/32"),
                "dev",
                h,
                "src",
                &HOST_V4.to_string(),
            ])
            .with_context(|| {
                format!(
                    "routing {a} into the namespace (does the host route it already at metric 0?)"
                )
            })?;
        }
        ns.verify_routes()?;
        Ok(ns)
    }

    /// A probe aimed at an address the host reaches some other way would
    /// leave the machine or hit a real service: refuse to run instead.
    fn verify_routes(&self) -> anyhow::Result<()> {
        let v4 = [TARGET_V4, RESOLVER_V4, UPSTREAM_V4, METADATA_V4, PRIVATE_V4];
        let all = v4
            .iter()
            .map(|a| a.to_string())
            .chain([TARGET_V6.to_string()]);
        for dst in all {
            let out = Command::new("ip")
                .args(["-j", "route", "get", &dst])
                .output()
                .context("running ip route get")?;
            let routes: serde_json::Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("`ip -j route get {dst}` printed no JSON"))?;
            if !route_is_via(&routes, &self.host_if) {
                bail!(
                    "the host routes {dst} as {routes}, not through {}: another network on this host uses the battery's addresses",
                    self.host_if
                );
            }
        }
        Ok(())
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth end, which takes the
        // host end and both /32 routes with it.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cordon doctor: removing namespace {}: {e:#}", self.name);
        }
    }
}

/// `ip -j route get` output: a connected route on `dev`, no gateway.
pub fn route_is_via(routes: &serde_json::Value, dev: &str) -> bool {
    let r = &routes[0];
    r["dev"].as_str() == Some(dev) && r.get("gateway").is_none()
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_connected_route_on_the_veth_counts() {
        assert!(route_is_via(
            &json!([{"dst": "198.19.254.2", "dev": "cdh1"}]),
            "cdh1"
        ));
        assert!(!route_is_via(&json!([{"dev": "eth0"}]), "cdh1"));
        assert!(!route_is_via(
            &json!([{"dev": "cdh1", "gateway": "198.19.254.9"}]),
            "cdh1"
        ));
        assert!(!route_is_via(&json!([]), "cdh1"));
    }
}
