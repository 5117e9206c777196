//! Every map is pinned by name under the daemon's bpffs directory, so a
//! restarted daemon (and programs it attaches anew) share the same state.
use agent_common::{KILLED_MAP_ENTRIES, ORIG_MAP_ENTRIES, OrigDst, PortKey, ProxyConfig};
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap},
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
