//! Map layouts shared by the kernel programs (`agent-ebpf`) and the daemon.
//!
//! Every type is `#[repr(C)]` with explicit padding so the byte layout is the
//! same on both sides; a change here is a change of the pinned-map ABI and
//! must bump [`MAP_ABI_VERSION`], which names the bpffs pin directory.
#![no_std]

pub mod devices;

/// Bumped whenever a map's key or value layout changes, so a daemon never
/// adopts pinned maps written with a different layout.
pub const MAP_ABI_VERSION: u32 = 2;

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
    /// cgroup id of the Cordon parent: the global containment observers
    /// check `ancestor(parent_level) == parent_id` to skip every other task
    /// on the host cheaply. 0 = not known yet: observers report nothing.
    pub parent_id: u64,
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

// ---- Host containment (LSM cgroup programs and their observers) ----

/// Bytes of LPM-trie key data: the profile's cgroup id (8 bytes, big-endian
/// so prefix bits run over it first) followed by path bytes. 256 is the
/// kernel's maximum LPM data size.
pub const FILE_KEY_DATA: usize = 256;
/// Path bytes that fit in a file-rule key after the cgroup id.
pub const FILE_KEY_PATH: usize = FILE_KEY_DATA - 8;
pub const FILE_RULE_ENTRIES: u32 = 65_536;
pub const PROFILE_ENTRIES: u32 = 4_096;
pub const UNIX_ALLOW_ENTRIES: u32 = 16_384;
/// `sun_path` of `struct sockaddr_un` (UAPI).
pub const SUN_PATH: usize = 108;
pub const AF_UNIX: u16 = 1;
/// Size of the containment event ring buffer (a power of two of pages).
pub const EVENT_RING_BYTES: u32 = 256 * 1024;
/// Bytes of path or address an event carries.
pub const EVENT_DATA: usize = 512;

/// `PROFILES` value bit: the cgroup has a containment profile installed.
pub const PROFILE_ACTIVE: u32 = 1;

/// Value of the file-rule trie. `verdict` is [`VERDICT_DENY`] or
/// [`VERDICT_ALLOW`]; the longest matching prefix decides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileVerdict {
    pub verdict: u8,
    pub _pad: [u8; 3],
}
pub const VERDICT_ALLOW: u8 = 0;
pub const VERDICT_DENY: u8 = 1;

/// Key of the pathname unix-socket allow list: the profile's cgroup id and
/// the exact `sun_path`, zero padded after its first NUL.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixKey {
    pub cgroup_id: u64,
    pub path: [u8; SUN_PATH],
    pub _pad: [u8; 4],
}

/// Offsets of the kernel struct fields the programs read, taken from the
/// running kernel's BTF by the daemon and set as read-only globals at load
/// time (so the verifier sees constants and nothing is hard-coded).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    pub file_f_path: u32,
    pub file_f_flags: u32,
    pub task_tgid: u32,
    pub msghdr_msg_name: u32,
    pub msghdr_msg_namelen: u32,
    pub socket_sk: u32,
}

impl KernelOffsets {
    /// What the object carries before the loader overrides it; never valid.
    pub const UNSET: KernelOffsets = KernelOffsets {
        file_f_path: u32::MAX,
        file_f_flags: u32::MAX,
        task_tgid: u32::MAX,
        msghdr_msg_name: u32::MAX,
        msghdr_msg_namelen: u32::MAX,
        socket_sk: u32::MAX,
    };
}

/// Offsets in `struct bpf_sock_addr_kern`, which is what a cgroup sock_addr
/// program's context pointer really points at. The UAPI view of the context
/// has no field for a unix address, so the unix hooks read `uaddr` (a
/// kernel pointer to the `sockaddr_un`) and `uaddrlen` through it. Taken
/// from BTF and set as a read-only global (`CORDON_UNIX_OFFSETS`) at load
/// time, apart from [`KernelOffsets`] so either can load without the other.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddrOffsets {
    pub uaddr: u32,
    pub uaddrlen: u32,
}

impl SockAddrOffsets {
    /// What the object carries before the loader overrides it; never valid.
    pub const UNSET: SockAddrOffsets = SockAddrOffsets {
        uaddr: u32::MAX,
        uaddrlen: u32::MAX,
    };
}

pub const EVENT_FILE_OPEN: u32 = 1;
pub const EVENT_UNIX_CONNECT: u32 = 2;
pub const EVENT_PTRACE: u32 = 3;
pub const EVENT_SIGNAL: u32 = 4;

/// `ContainRawEvent::addr_kind` for unix events.
pub const ADDR_UNKNOWN: u8 = 0;
pub const ADDR_PATHNAME: u8 = 1;
pub const ADDR_ABSTRACT: u8 = 2;
pub const ADDR_UNNAMED: u8 = 3;

/// One refusal by any LSM (Landlock's or Cordon's), as the observers push
/// it to the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainRawEvent {
    pub cgroup_id: u64,
    /// One of the `EVENT_*` kinds.
    pub kind: u32,
    /// The hook's return value: a negative errno.
    pub ret: i32,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    /// file_open: `f_flags`; ptrace: the access mode; signal: the signal.
    pub arg: u32,
    /// ptrace and signal: the target's tgid.
    pub target_pid: u32,
    /// unix: one of the `ADDR_*` kinds.
    pub addr_kind: u8,
    /// The path did not fit in `data` and was cut.
    pub truncated: u8,
    /// Valid bytes in `data` (file: the path's, with its NUL; unix: the
    /// family-stripped address length).
    pub data_len: u16,
    pub data: [u8; EVENT_DATA],
    pub _pad: [u8; 4],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] structs of integers with explicit padding.
    unsafe impl aya::Pod for super::ProxyConfig {}
    unsafe impl aya::Pod for super::OrigDst {}
    unsafe impl aya::Pod for super::PortKey {}
    unsafe impl aya::Pod for super::FileVerdict {}
    unsafe impl aya::Pod for super::UnixKey {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::SockAddrOffsets {}
    unsafe impl aya::Pod for super::ContainRawEvent {}
}

// The layouts are an ABI with the kernel programs: no implicit padding.
const _: () = assert!(core::mem::size_of::<ProxyConfig>() == 16);
const _: () = assert!(core::mem::size_of::<UnixKey>() == 120);
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 24);
const _: () = assert!(core::mem::size_of::<SockAddrOffsets>() == 8);
const _: () = assert!(core::mem::size_of::<ContainRawEvent>() == 560);
