//! Every map is pinned by name under the daemon's bpffs directory, so a
//! restarted daemon (and programs it attaches anew) share the same state.
use agent_common::{
    EVENT_RING_BYTES, FILE_KEY_DATA, FILE_RULE_ENTRIES, FileVerdict, KILLED_MAP_ENTRIES,
    ORIG_MAP_ENTRIES, OrigDst, PROFILE_ENTRIES, PortKey, ProxyConfig, SUN_PATH, UNIX_ALLOW_ENTRIES,
    UnixKey,
};
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};

#[map(name = "CORDON_CONFIG")]
pub static CONFIG: Array<ProxyConfig> = Array::pinned(1, 0);

/// cgroup id -> kill reason bits. Checked for the caller's cgroup and every
/// ancestor below the Cordon parent.
#[map(name = "CORDON_KILLED")]
pub static KILLED: HashMap<u64, u32> = HashMap::pinned(KILLED_MAP_ENTRIES, 0);

/// Socket cookie -> original TCP destination, until sock_ops re-keys it.
#[map(name = "CORDON_TCP_COOKIE")]
pub static TCP_BY_COOKIE: LruHashMap<u64, OrigDst> = LruHashMap::pinned(ORIG_MAP_ENTRIES, 0);

/// Client local port -> original TCP destination; the proxy takes it on accept.
#[map(name = "CORDON_TCP_PORT")]
pub static TCP_BY_PORT: LruHashMap<PortKey, OrigDst> = LruHashMap::pinned(ORIG_MAP_ENTRIES, 0);

/// Socket cookie -> the DNS server a UDP socket addressed.
#[map(name = "CORDON_UDP_COOKIE")]
pub static UDP_BY_COOKIE: LruHashMap<u64, OrigDst> = LruHashMap::pinned(ORIG_MAP_ENTRIES, 0);

/// Client source port -> who sent the DNS datagram (cgroup, pid, server).
#[map(name = "CORDON_DNS_CLIENT")]
pub static DNS_CLIENTS: LruHashMap<PortKey, OrigDst> = LruHashMap::pinned(ORIG_MAP_ENTRIES, 0);

// ---- Host containment ----

/// Instance cgroup id -> `PROFILE_ACTIVE`: which cgroups have a
/// containment profile. Checked for every ancestor below the parent.
#[map(name = "CORDON_PROFILES")]
pub static PROFILES: HashMap<u64, u32> = HashMap::pinned(PROFILE_ENTRIES, 0);

/// (profile cgroup id, path prefix) -> allow/deny; longest prefix wins.
#[map(name = "CORDON_FILE_RULES")]
pub static FILE_RULES: LpmTrie<[u8; FILE_KEY_DATA], FileVerdict> =
    LpmTrie::pinned(FILE_RULE_ENTRIES, 0);

/// (profile cgroup id, exact sun_path) the profile may connect or send to.
#[map(name = "CORDON_UNIX_ALLOW")]
pub static UNIX_ALLOW: HashMap<UnixKey, u8> = HashMap::pinned(UNIX_ALLOW_ENTRIES, 0);

/// Refusals seen by the observers, for the daemon's audit trail.
#[map(name = "CORDON_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::pinned(EVENT_RING_BYTES, 0);

/// Events dropped because the ring buffer was full (index 0).
#[map(name = "CORDON_LOST")]
pub static LOST: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

/// A unix address the agent asked for, kept per thread until the unix
/// hook that may refuse it has run.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UnixStash {
    /// `struct socket *` and its `struct sock *`, to match the later hook.
    pub socket: u64,
    pub sk: u64,
    pub len: u16,
    pub _pad: [u8; 2],
    pub addr: [u8; SUN_PATH],
}

/// pid_tgid -> the last unix address connect/sendmsg accepted.
#[map(name = "CORDON_UNIX_STASH")]
pub static UNIX_STASH: LruHashMap<u64, UnixStash> = LruHashMap::pinned(8_192, 0);

pub const SCRATCH_PATH: usize = 4_096;

/// Room for a whole d_path when a path does not fit the key or event.
/// `seq` detects another program run on the same CPU (after preemption)
/// having reused the buffer while it was in use.
#[repr(C)]
pub struct PathScratch {
    pub seq: u64,
    pub buf: [u8; SCRATCH_PATH],
}

#[map(name = "CORDON_PATH_SCRATCH")]
pub static SCRATCH: PerCpuArray<PathScratch> = PerCpuArray::with_max_entries(1, 0);
