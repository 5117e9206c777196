//! A throwaway network namespace joined to the host by a veth pair: the test "internet".
//!
//! The host side gets the first address of the slot's /29 and /64; the namespace side gets the
//! next [`NS_ADDRS`] addresses. The only host route to them is the connected route on the veth,
//! and that route is verified before the guard is handed out.

mod enter;
mod slot;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use enter::enter_netns;
use slot::Slot;
pub use slot::{NS_ADDRS, SlotAddrs};

use crate::error::{Error, Result};
use crate::process::{run_checked, run_with_timeout};

/// Prefix of every namespace this harness creates.
pub const NETNS_PREFIX: &str = "cordon-t-";
/// Prefix of the host-side veth names (`cth<slot>`); the namespace side is `ctn<slot>`.
pub const VETH_HOST_PREFIX: &str = "cth";

const IP_TIMEOUT: Duration = Duration::from_secs(10);
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A live test namespace. Dropping it deletes the namespace and both veth ends.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    ns_if: String,
    addrs: SlotAddrs,
    slot: Slot,
}

impl NetNs {
    /// Create `cordon-t-<pid>-<n>` with a veth to the host, both ends up, and verified routes.
    pub fn new() -> Result<Self> {
        remove_stale_namespaces();
        let slot = Slot::acquire()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let index = slot.index();
        let ns = Self {
            name: format!("{NETNS_PREFIX}{}-{n}", std::process::id()),
            host_if: format!("{VETH_HOST_PREFIX}{index}"),
            ns_if: format!("ctn{index}"),
            addrs: SlotAddrs::for_index(index),
            slot,
        };
        // A veth with this name can only be left over from a crashed holder of the slot.
        let _ = run_with_timeout(&mut ip(&["link", "del", &ns.host_if]), IP_TIMEOUT);
        // From here on Drop undoes whatever part of the setup succeeded.
        ns.configure()?;
        ns.verify_routes()?;
        Ok(ns)
    }

    fn configure(&self) -> Result<()> {
        let (name, host_if, ns_if) = (&self.name, &self.host_if, &self.ns_if);
        let a = &self.addrs;
        let v4 = |ip: Ipv4Addr| format!("{ip}/{}", SlotAddrs::V4_PREFIX);
        let v6 = |ip: Ipv6Addr| format!("{ip}/{}", SlotAddrs::V6_PREFIX);
        ip_ok(&["netns", "add", name])?;
        ip_ok(&[
            "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name,
        ])?;
        ip_ok(&["addr", "add", &v4(a.host_v4()), "dev", host_if])?;
        // nodad: the addresses are usable at once instead of after duplicate detection.
        ip_ok(&[
            "-6",
            "addr",
            "add",
            &v6(a.host_v6()),
            "dev",
            host_if,
            "nodad",
        ])?;
        ip_ok(&["link", "set", host_if, "up"])?;
        ip_ok(&["-n", name, "link", "set", "lo", "up"])?;
        for i in 0..NS_ADDRS {
            ip_ok(&["-n", name, "addr", "add", &v4(a.ns_v4(i)), "dev", ns_if])?;
            ip_ok(&[
                "-n",
                name,
                "-6",
                "addr",
                "add",
                &v6(a.ns_v6(i)),
                "dev",
                ns_if,
                "nodad",
            ])?;
        }
        ip_ok(&["-n", name, "link", "set", ns_if, "up"])
    }

    /// Traffic to the namespace must leave through our veth on a connected route, never a
    /// default route or gateway.
    fn verify_routes(&self) -> Result<()> {
        for i in 0..NS_ADDRS {
            for dst in [
                IpAddr::V4(self.addrs.ns_v4(i)),
                IpAddr::V6(self.addrs.ns_v6(i)),
            ] {
                let out = run_checked(
                    &mut ip(&["-j", "route", "get", &dst.to_string()]),
                    IP_TIMEOUT,
                )?;
                let routes: serde_json::Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| {
                        Error::Setup(format!("`ip -j route get {dst}` printed bad JSON: {e}"))
                    })?;
                let route = routes.get(0).unwrap_or(&serde_json::Value::Null);
                let dev = route.get("dev").and_then(|d| d.as_str());
                if dev != Some(self.host_if.as_str()) || route.get("gateway").is_some() {
                    return Err(Error::Setup(format!(
                        "route to {dst} is {route}, expected a connected route on {}",
                        self.host_if
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bind-mounted namespace file (`/var/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    pub fn ns_if(&self) -> &str {
        &self.ns_if
    }

    pub fn slot(&self) -> u16 {
        self.slot.index()
    }

    pub fn addrs(&self) -> SlotAddrs {
        self.addrs
    }

    /// Primary namespace-side IPv4 address.
    pub fn v4(&self) -> Ipv4Addr {
        self.addrs.ns_v4(0)
    }

    /// Primary namespace-side IPv6 address.
    pub fn v6(&self) -> Ipv6Addr {
        self.addrs.ns_v6(0)
    }

    /// Namespace-side IPv4 address `i` (`0..NS_ADDRS`), for servers that need their own IP.
    pub fn v4_at(&self, i: u8) -> Ipv4Addr {
        self.addrs.ns_v4(i)
    }

    pub fn v6_at(&self, i: u8) -> Ipv6Addr {
        self.addrs.ns_v6(i)
    }

    pub fn host_v4(&self) -> Ipv4Addr {
        self.addrs.host_v4()
    }

    pub fn host_v6(&self) -> Ipv6Addr {
        self.addrs.host_v6()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting either veth end removes the pair; the namespace may already hold none.
        let _ = run_with_timeout(&mut ip(&["link", "del", &self.host_if]), IP_TIMEOUT);
        if let Err(e) = run_checked(&mut ip(&["netns", "del", &self.name]), IP_TIMEOUT) {
            eprintln!("cordon-e2e: could not delete netns {}: {e}", self.name);
        }
    }
}

fn ip(args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    cmd
}

fn ip_ok(args: &[&str]) -> Result<()> {
    run_checked(&mut ip(args), IP_TIMEOUT).map(drop)
}

/// Namespaces named after a process that no longer exists were left by a crashed test run.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_with_timeout(&mut ip(&["netns", "del", &name]), IP_TIMEOUT);
        }
    }
}
