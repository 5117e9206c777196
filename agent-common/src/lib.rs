//! Map layouts shared by the kernel programs (`agent-ebpf`) and the daemon.
//!
//! Every type is `#[repr(C)]` with explicit padding so the byte layout is the
//! same on both sides; a change here is a change of the pinned-map ABI and
//! must bump [`MAP_ABI_VERSION`], which names the bpffs pin directory.
#![no_std]

/// Bumped whenever a map's key or value layout changes, so a daemon never
/// adopts pinned maps written with a different layout.
pub const MAP_ABI_VERSION: u32 = 1;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// How many cgroup levels below the Cordon parent are checked for a kill
/// mark (agent, instance, sub-agent, sub-instance, ...).
pub const MAX_KILL_DEPTH: u32 = 12;

/// Capacity of the connection-tracking maps. LRU, so a flood of connects
/// that the proxy never accepts ages out instead of filling the map.
pub const ORIG_MAP_ENTRIES: u32 = 65_536;
pub const KILLED_MAP_ENTRIES: u32 = 4_096;

/// Runtime configuration the daemon writes into the `CONFIG` array map.
/// Ports are in host byte order; 0 means "no listener": connects fail.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// TCP port of the transparent proxy on 127.0.0.1 and [::1].
    pub proxy_port: u16,
    /// UDP port of the DNS resolver on 127.0.0.1 and [::1].
    pub dns_port: u16,
    /// cgroup v2 level of the Cordon parent cgroup (root is level 0).
    pub parent_level: u32,
}

/// What the kernel saw when an agent socket connected: where it wanted to
/// go and who asked. Written by connect4/6, re-keyed by sock_ops.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrigDst {
    pub cgroup_id: u64,
    /// IPv4 in the first four bytes, network byte order; IPv6 all sixteen.
    pub addr: [u8; 16],
    pub pid: u32,
    pub uid: u32,
    /// Destination port, host byte order.
    pub port: u16,
    pub family: u16,
    pub _pad: u32,
}

/// Key of the maps the daemon looks up when it accepts a redirected
/// connection or receives a DNS datagram: the client's local port, per
/// family. Unique because every redirected flow has the same remote end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortKey {
    pub family: u16,
    pub port: u16,
}

/// Kill marks: value is a bit set of reasons (only [`KILL_ALL`] today).
pub const KILL_ALL: u32 = 1;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] structs of integers with explicit padding.
    unsafe impl aya::Pod for super::ProxyConfig {}
    unsafe impl aya::Pod for super::OrigDst {}
    unsafe impl aya::Pod for super::PortKey {}
}
