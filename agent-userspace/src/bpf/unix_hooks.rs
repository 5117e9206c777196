//! The required containment step: the pathname unix-socket allow list on
//! the cgroup sock_addr unix hooks, loaded through `raw_prog` because aya
//! 0.16 has no attach type for them, and the device allowlist
//! (`agent_common::devices`) on the cgroup device hook, loaded the same way
//! because aya 0.16 cannot turn its link into one to pin. They are ordinary
//! cgroup programs, not trampolines, so they run where the LSM layer cannot.
use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd, RawFd},
    path::Path,
};

use aya::{
    Ebpf,
    maps::{Map, MapData},
};

use super::{
    BpfError,
    load::{EBPF_OBJECT, sock_addr_offsets},
    raw_prog::{
        self, BPF_CGROUP_DEVICE, BPF_CGROUP_UNIX_CONNECT, BPF_CGROUP_UNIX_SENDMSG,
        BPF_PROG_TYPE_CGROUP_DEVICE, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
    },
};

/// (program, program type, attach type). The unix hooks sit in
/// cgroup/connect4 and cgroup/sendmsg4 sections only for aya-obj's parser;
/// aya never loads any of these (it loads programs only by the names
/// load.rs asks for).
pub(super) const REQUIRED_HOOKS: [(&str, u32, u32); 3] = [
    (
        "cordon_uds_connect",
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        BPF_CGROUP_UNIX_CONNECT,
    ),
    (
        "cordon_uds_sendmsg",
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        BPF_CGROUP_UNIX_SENDMSG,
    ),
    (
        "cordon_device",
        BPF_PROG_TYPE_CGROUP_DEVICE,
        BPF_CGROUP_DEVICE,
    ),
];

/// The data of any map variant (aya has no accessor on `Map`).
fn map_data(m: &Map) -> &MapData {
    macro_rules! each {
        ($($v:ident),*) => {
            match m { $(Map::$v(d) => d,)* }
        };
    }
    each!(
        Array,
        ArrayOfMaps,
        BloomFilter,
        CgroupArray,
        CgroupStorage,
        CgrpStorage,
        CpuMap,
        DevMap,
        DevMapHash,
        HashMap,
        HashOfMaps,
        InodeStorage,
        LpmTrie,
        LruHashMap,
        PerCpuArray,
        PerCpuCgroupStorage,
        PerCpuHashMap,
        PerCpuLruHashMap,
        PerfEventArray,
        ProgramArray,
        Queue,
        ReusePortSockArray,
        RingBuf,
        SockHash,
        SockMap,
        SkStorage,
        Stack,
        StackTraceMap,
        Unsupported,
        XskMap
    )
}

/// Loads the unix hooks and the device hook of an object `attach_all`
/// returned, attaches them to `cgroup` and pins their links in `pin_dir`
/// (temporary name, then renamed over the previous pin, so a restart has
/// no gap). All are verified before any is attached. Without an `Ok` here,
/// no profile may be installed: pathname unix sockets and devices would
/// not be confined.
///
/// Works whether or not the daemon has already taken maps out of `ebpf`:
/// those are opened from their pins instead.
pub fn attach_required_hooks(
    ebpf: &mut Ebpf,
    cgroup: &Path,
    pin_dir: &Path,
) -> Result<(), BpfError> {
    // The offsets the object was loaded with came from the same BTF; fail
    // here, naming the cause, rather than load programs reading UNSET.
    sock_addr_offsets()?;

    // Maps the daemon took out of `ebpf` are still pinned: open those.
    let mut opened: Vec<(String, MapData)> = Vec::new();
    let in_ebpf: Vec<String> = ebpf.maps().map(|(n, _)| n.to_string()).collect();
    for entry in std::fs::read_dir(pin_dir).map_err(|source| BpfError::Io {
        path: pin_dir.into(),
        source,
    })? {
        let entry = entry.map_err(|source| BpfError::Io {
            path: pin_dir.into(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("CORDON_") && !in_ebpf.contains(&name) {
            let data = MapData::from_pin(entry.path()).map_err(|source| BpfError::Map {
                name: "pinned map",
                source,
            })?;
            opened.push((name, data));
        }
    }
    let map_fd = |name: &str| -> Option<RawFd> {
        if let Some(m) = ebpf.map(name) {
            return Some(map_data(m).fd().as_fd().as_raw_fd());
        }
        opened
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.fd().as_fd().as_raw_fd())
    };
    let names = REQUIRED_HOOKS.map(|(n, _, _)| n);
    let insns = raw_prog::relocated(EBPF_OBJECT, &names, map_fd)?;

    let mut progs: Vec<(&'static str, u32, OwnedFd)> = Vec::new();
    for (name, prog_type, attach_type) in REQUIRED_HOOKS {
        let fd = raw_prog::load(name, prog_type, attach_type, &insns[name])?;
        progs.push((name, attach_type, fd));
    }
    for (name, attach_type, prog) in &progs {
        let link = raw_prog::attach_cgroup(name, prog, cgroup, *attach_type)?;
        pin_link(&link, pin_dir, name)?;
    }
    Ok(())
}

/// As load.rs does for aya links: pin under a temporary name, rename over
/// the old pin, so the previous link is released only after this one is
/// attached. bpffs refuses names containing a dot.
fn pin_link(link: &OwnedFd, dir: &Path, prog: &str) -> Result<(), BpfError> {
    let final_path = dir.join(format!("link_{prog}"));
    let tmp = dir.join(format!("next_link_{prog}"));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(BpfError::Io { path: tmp, source }),
    }
    raw_prog::pin(link, &tmp)?;
    std::fs::rename(&tmp, &final_path).map_err(|source| BpfError::Io {
        path: final_path,
        source,
    })
}
