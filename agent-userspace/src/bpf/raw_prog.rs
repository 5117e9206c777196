//! Loading and attaching programs through bpf(2) directly, for attach
//! types aya 0.16 has no variant for: the cgroup sock_addr unix hooks
//! (`BPF_CGROUP_UNIX_CONNECT` / `_SENDMSG`, kernel 6.7+).
//!
//! The bytecode comes from the same embedded object aya loads; aya-obj
//! parses it and patches map references with the fds of the maps aya
//! created or adopted (so both share the pinned state and the read-only
//! globals aya wrote and froze). Only the named programs are relocated.
use std::{
    collections::{BTreeMap, HashSet},
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
};

use aya_obj::generated::bpf_insn;

pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
pub const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
pub const BPF_CGROUP_DEVICE: u32 = 6;
pub const BPF_CGROUP_UNIX_CONNECT: u32 = 49;
pub const BPF_CGROUP_UNIX_SENDMSG: u32 = 50;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_LINK_CREATE: libc::c_long = 28;
/// Room for the end of a verifier log: since 6.4 the kernel keeps the
/// last bytes when it overflows, and the last bytes hold the reason.
const LOG_BYTES: usize = 1 << 20;
const BPF_OBJ_NAME_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum RawProgError {
    #[error("parsing the eBPF object: {0}")]
    Parse(String),
    #[error("program {0} is missing from the eBPF object")]
    Missing(&'static str),
    #[error("relocating {name}: {detail}")]
    Relocate { name: &'static str, detail: String },
    #[error("the kernel refused to load {name} (BPF_PROG_LOAD: {source}); verifier log:\n{log}")]
    Load {
        name: &'static str,
        #[source]
        source: io::Error,
        log: String,
    },
    #[error("attaching {name} to {target} (attach type {attach_type}): {source}")]
    Attach {
        name: &'static str,
        target: PathBuf,
        attach_type: u32,
        #[source]
        source: io::Error,
    },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An error with every cause, for errors whose Display is only a headline.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The instructions of each program in `names`, map references patched
/// with `map_fd(map name)` and calls to shared functions linked in.
/// Other programs are dropped first, so maps only they use need no fd.
pub fn relocated(
    object: &[u8],
    names: &[&'static str],
    map_fd: impl Fn(&str) -> Option<RawFd>,
) -> Result<BTreeMap<&'static str, Vec<bpf_insn>>, RawProgError> {
    let mut obj = aya_obj::Object::parse(object).map_err(|e| RawProgError::Parse(chain(&e)))?;
    // As aya does: every section holding a function; calls into these are
    // linked by relocate_calls, not treated as map references.
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    let entries: HashSet<(usize, u64)> = obj.programs.values().map(|p| p.function_key()).collect();
    for &name in names {
        if !obj.programs.contains_key(name) {
            return Err(RawProgError::Missing(name));
        }
    }
    obj.programs.retain(|n, _| names.contains(&n.as_str()));
    let mine: HashSet<(usize, u64)> = obj.programs.values().map(|p| p.function_key()).collect();
    obj.functions
        .retain(|k, _| mine.contains(k) || !entries.contains(k));

    let maps = obj.maps.clone();
    let with_fds: Vec<(&str, RawFd, &aya_obj::Map)> = maps
        .iter()
        .filter_map(|(n, m)| map_fd(n).map(|fd| (n.as_str(), fd, m)))
        .collect();
    let reloc = |e: aya_obj::relocation::EbpfRelocationError| RawProgError::Relocate {
        name: names[0],
        detail: chain(&e),
    };
    obj.relocate_maps(with_fds.into_iter(), &text_sections)
        .map_err(reloc)?;
    obj.relocate_calls(&text_sections).map_err(reloc)?;

    let mut out = BTreeMap::new();
    for &name in names {
        let key = obj.programs[name].function_key();
        out.insert(name, obj.functions[&key].instructions.clone());
    }
    Ok(out)
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<RawFd> {
    // SAFETY: `attr` is a #[repr(C)] prefix of union bpf_attr for `cmd`;
    // the kernel treats the bytes past `size` as zero.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as RawFd)
    }
}

/// The BPF_PROG_LOAD part of union bpf_attr, up to the last field used.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; BPF_OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads (verifies) one program. A refusal is retried with the verifier
/// log on, so the error carries the kernel's reason (logging only then:
/// it slows verification of every successful load).
pub fn load(
    name: &'static str,
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[bpf_insn],
) -> Result<OwnedFd, RawProgError> {
    let license = c"GPL";
    let mut prog_name = [0u8; BPF_OBJ_NAME_LEN];
    // The kernel takes at most 15 bytes of [A-Za-z0-9_.].
    for (d, s) in prog_name
        .iter_mut()
        .zip(name.bytes().take(BPF_OBJ_NAME_LEN - 1))
    {
        *d = s;
    }
    let attr = |log: &mut [u8], level: u32| ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: level,
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        kern_version: 0,
        prog_name,
        expected_attach_type,
        ..Default::default()
    };
    let first = sys_bpf(BPF_PROG_LOAD, &mut attr(&mut [], 0));
    let first_err = match first {
        // SAFETY: a new fd the kernel just returned, owned by no one else.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) => e,
    };
    let mut log = vec![0u8; LOG_BYTES];
    let retry = sys_bpf(BPF_PROG_LOAD, &mut attr(&mut log, 1));
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim_end().to_string();
    match retry {
        // Verification is deterministic; a pass the second time means the
        // first failure was transient (e.g. memory). Keep the program.
        // SAFETY: as above.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(_) => Err(RawProgError::Load {
            name,
            source: first_err,
            log: if text.is_empty() {
                "(empty: refused before verification)".into()
            } else {
                text
            },
        }),
    }
}

/// The BPF_LINK_CREATE part of union bpf_attr for a cgroup target.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// Attaches `prog` to the cgroup at `cgroup` with a bpf_link (always
/// multi-attach, so an earlier daemon's link stays until its pin goes).
pub fn attach_cgroup(
    name: &'static str,
    prog: &OwnedFd,
    cgroup: &Path,
    attach_type: u32,
) -> Result<OwnedFd, RawProgError> {
    let err = |source| RawProgError::Attach {
        name,
        target: cgroup.into(),
        attach_type,
        source,
    };
    let cg = std::fs::File::open(cgroup).map_err(err)?;
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: cg.as_raw_fd() as u32,
        attach_type,
        flags: 0,
    };
    let fd = sys_bpf(BPF_LINK_CREATE, &mut attr).map_err(err)?;
    // SAFETY: a new fd the kernel just returned, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[repr(C)]
struct ObjPinAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// Pins `fd` (a link) at `path` in bpffs.
pub fn pin(fd: &OwnedFd, path: &Path) -> Result<(), RawProgError> {
    let err = |source| RawProgError::Pin {
        path: path.into(),
        source,
    };
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let mut attr = ObjPinAttr {
        pathname: c.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    sys_bpf(BPF_OBJ_PIN, &mut attr).map_err(err)?;
    Ok(())
}
