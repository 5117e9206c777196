//! Address slots: each live namespace owns one /29 (IPv4) and one /64 (IPv6) from the
//! documentation ranges, so nothing a test sends can ever route off the machine.
//!
//! A slot is held by an exclusive `flock` on a file under [`LOCK_DIR`]: the kernel releases it
//! when the holder exits, so tests in parallel threads and in parallel processes never collide,
//! and a crashed test never leaks a slot.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, IoContext, Result};

/// Directory holding one lock file per slot.
pub const LOCK_DIR: &str = "/run/cordon-e2e/slots";
/// 32 /29 blocks in 203.0.113.0/24 plus 32 in 198.51.100.0/24.
pub const SLOT_COUNT: u16 = 64;
/// Addresses a namespace may use on its side of the veth (the host takes the first host address).
pub const NS_ADDRS: u8 = 4;

/// An address block owned by this process until dropped.
#[derive(Debug)]
pub struct Slot {
    index: u16,
    _lock: Flock<File>,
}

impl Slot {
    /// Take the first free slot.
    pub fn acquire() -> Result<Self> {
        let dir = Path::new(LOCK_DIR);
        std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        for index in 0..SLOT_COUNT {
            let path = dir.join(format!("{index}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .ctx(|| format!("open {}", path.display()))?;
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                return Ok(Self { index, _lock: lock });
            }
        }
        Err(Error::Setup(format!(
            "all {SLOT_COUNT} network slots under {LOCK_DIR} are in use"
        )))
    }

    pub fn index(&self) -> u16 {
        self.index
    }
}

/// The addresses derived from a slot index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAddrs {
    v4_base: Ipv4Addr,
    v6_base: Ipv6Addr,
}

impl SlotAddrs {
    pub fn for_index(index: u16) -> Self {
        let (net, block) = if index < 32 {
            ([203, 0, 113], index)
        } else {
            ([198, 51, 100], index - 32)
        };
        // block < 32, so block * 8 <= 248 fits the last octet.
        let last = u8::try_from(block * 8).unwrap_or(0);
        Self {
            v4_base: Ipv4Addr::new(net[0], net[1], net[2], last),
            v6_base: Ipv6Addr::new(0x2001, 0xdb8, 0x100 + index, 0, 0, 0, 0, 0),
        }
    }

    pub const V4_PREFIX: u8 = 29;
    pub const V6_PREFIX: u8 = 64;

    pub fn v4_net(&self) -> Ipv4Addr {
        self.v4_base
    }

    pub fn v6_net(&self) -> Ipv6Addr {
        self.v6_base
    }

    pub fn host_v4(&self) -> Ipv4Addr {
        offset_v4(self.v4_base, 1)
    }

    pub fn host_v6(&self) -> Ipv6Addr {
        offset_v6(self.v6_base, 1)
    }

    /// Namespace-side address `i` (`i < NS_ADDRS`, clamped).
    pub fn ns_v4(&self, i: u8) -> Ipv4Addr {
        offset_v4(self.v4_base, 2 + i.min(NS_ADDRS - 1))
    }

    pub fn ns_v6(&self, i: u8) -> Ipv6Addr {
        offset_v6(self.v6_base, 2 + i.min(NS_ADDRS - 1))
    }
}

fn offset_v4(base: Ipv4Addr, n: u8) -> Ipv4Addr {
    let [a, b, c, d] = base.octets();
    Ipv4Addr::new(a, b, c, d + n)
}

fn offset_v6(base: Ipv6Addr, n: u8) -> Ipv6Addr {
    let mut s = base.segments();
    s[7] = u16::from(n);
    Ipv6Addr::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_disjoint_documentation_blocks() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..SLOT_COUNT {
            let a = SlotAddrs::for_index(i);
            let [x, y, z, _] = a.v4_net().octets();
            assert!(matches!((x, y, z), (203, 0, 113) | (198, 51, 100)));
            assert_eq!(a.v6_net().segments()[..2], [0x2001, 0xdb8]);
            for j in 0..NS_ADDRS {
                assert!(seen.insert(a.ns_v4(j)), "duplicate {}", a.ns_v4(j));
            }
            assert!(seen.insert(a.host_v4()));
        }
    }

    #[test]
    fn namespace_addresses_stay_inside_the_slash_29() {
        let a = SlotAddrs::for_index(31);
        assert_eq!(a.v4_net(), Ipv4Addr::new(203, 0, 113, 248));
        assert_eq!(a.host_v4(), Ipv4Addr::new(203, 0, 113, 249));
        assert_eq!(a.ns_v4(NS_ADDRS - 1), Ipv4Addr::new(203, 0, 113, 253));
        assert_eq!(a.ns_v4(200), a.ns_v4(NS_ADDRS - 1));
    }
}
