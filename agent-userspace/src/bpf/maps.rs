//! Typed handles on the pinned maps. Lookups are single bpf(2) syscalls,
//! cheap enough to make from async tasks; the mutexes only serialise the
//! `&mut` aya API, never I/O.
use std::{net::IpAddr, os::fd::AsFd, path::Path, sync::Mutex};

use agent_common::{AF_INET, AF_INET6, KILL_ALL, OrigDst, PortKey, ProxyConfig};
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData},
};

use super::BpfError;

const CONFIG: &str = "CORDON_CONFIG";
const KILLED: &str = "CORDON_KILLED";
const TCP_BY_PORT: &str = "CORDON_TCP_PORT";
const DNS_CLIENTS: &str = "CORDON_DNS_CLIENT";

pub struct EnforcementMaps {
    config: Mutex<Array<MapData, ProxyConfig>>,
    killed: Mutex<HashMap<MapData, u64, u32>>,
    /// Only taken from (`take`), never through aya's `&mut` API: no lock.
    tcp_by_port: HashMap<MapData, PortKey, OrigDst>,
    dns_clients: Mutex<HashMap<MapData, PortKey, OrigDst>>,
}

/// What the kernel recorded about a redirected flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowOrigin {
    pub cgroup_id: u64,
    pub pid: u32,
    pub uid: u32,
    pub dst: std::net::SocketAddr,
}

impl FlowOrigin {
    fn from_raw(o: &OrigDst) -> FlowOrigin {
        let ip = if o.family == AF_INET6 {
            let v6 = std::net::Ipv6Addr::from(o.addr);
            // A v4-mapped destination is an IPv4 destination for policy.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        } else {
            IpAddr::V4(std::net::Ipv4Addr::new(
                o.addr[0], o.addr[1], o.addr[2], o.addr[3],
            ))
        };
        FlowOrigin {
            cgroup_id: o.cgroup_id,
            pid: o.pid,
            uid: o.uid,
            dst: std::net::SocketAddr::new(ip, o.port),
        }
    }
}

pub(super) fn take<V>(ebpf: &mut Ebpf, name: &'static str) -> Result<V, BpfError>
where
    V: TryFrom<Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(BpfError::Map {
        name,
        source: aya::maps::MapError::InvalidName { name: name.into() },
    })?;
    V::try_from(map).map_err(|source| BpfError::Map { name, source })
}

fn from_pin<V>(dir: &Path, name: &'static str) -> Result<V, BpfError>
where
    V: TryFrom<Map, Error = aya::maps::MapError>,
{
    let data =
        MapData::from_pin(dir.join(name)).map_err(|source| BpfError::Map { name, source })?;
    let map = match name {
        CONFIG => Map::Array(data),
        _ => Map::HashMap(data),
    };
    V::try_from(map).map_err(|source| BpfError::Map { name, source })
}

fn family_of(addr: &std::net::SocketAddr) -> u16 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

impl EnforcementMaps {
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<EnforcementMaps, BpfError> {
        Ok(EnforcementMaps {
            config: Mutex::new(take(ebpf, CONFIG)?),
            killed: Mutex::new(take(ebpf, KILLED)?),
            tcp_by_port: take(ebpf, TCP_BY_PORT)?,
            dns_clients: Mutex::new(take(ebpf, DNS_CLIENTS)?),
        })
    }

    /// Opens the kill and config maps straight from their pins, for the
    /// CLI acting while the daemon is down.
    pub fn kill_map_from_pins(pin_dir: &Path) -> Result<KillMap, BpfError> {
        Ok(KillMap(from_pin(pin_dir, KILLED)?))
    }

    pub fn set_config(&self, cfg: ProxyConfig) -> Result<(), BpfError> {
        let mut m = self.config.lock().unwrap_or_else(|e| e.into_inner());
        m.set(0, &cfg, 0).map_err(|source| BpfError::Map {
            name: CONFIG,
            source,
        })
    }

    /// Takes (and deletes) the record of a redirected TCP connection, found
    /// by the client's address as the proxy sees it on accept.
    pub fn take_tcp_origin(&self, peer: &std::net::SocketAddr) -> Option<FlowOrigin> {
        let key = PortKey {
            family: family_of(peer),
            port: peer.port(),
        };
        let map = aya::maps::IterableMap::map(&self.tcp_by_port).fd().as_fd();
        match super::take::take::<PortKey, OrigDst>(map, &key) {
            Ok(v) => v.map(|v| FlowOrigin::from_raw(&v)),
            Err(e) => {
                // Without its record the flow cannot be attributed: it is
                // refused (the caller resets it).
                tracing::error!("taking a flow record from {TCP_BY_PORT}: {e}");
                None
            }
        }
    }

    /// Who sent a DNS datagram from this local address.
    pub fn dns_client(&self, peer: &std::net::SocketAddr) -> Option<FlowOrigin> {
        let key = PortKey {
            family: family_of(peer),
            port: peer.port(),
        };
        let m = self.dns_clients.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&key, 0).ok().map(|v| FlowOrigin::from_raw(&v))
    }

    pub fn with_kill_map<R>(&self, f: impl FnOnce(&mut HashMap<MapData, u64, u32>) -> R) -> R {
        let mut m = self.killed.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut m)
    }
}

/// The kill map, opened from its pin or taken from a loaded object.
pub struct KillMap(pub HashMap<MapData, u64, u32>);

pub fn mark_killed(map: &mut HashMap<MapData, u64, u32>, cgroup_id: u64) -> Result<(), BpfError> {
    map.insert(&cgroup_id, &KILL_ALL, 0)
        .map_err(|source| BpfError::Map {
            name: KILLED,
            source,
        })
}

pub fn unmark_killed(map: &mut HashMap<MapData, u64, u32>, cgroup_id: u64) -> Result<(), BpfError> {
    match map.remove(&cgroup_id) {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(source) => Err(BpfError::Map {
            name: KILLED,
            source,
        }),
    }
}
