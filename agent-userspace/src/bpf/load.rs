//! Attaching every program once at the Cordon parent cgroup.
//!
//! Programs are attached anew on every daemon start with multi-attach and
//! their links pinned under a temporary name, then renamed over the
//! previous pins: the old links are released only once the new ones are
//! in place, so a restart or upgrade never leaves a gap in enforcement.
//! Maps are pinned by name and reused, so state survives too.
//!
//! Containment is two separate steps, so a kernel that refuses them still
//! gets forced egress. `attach_required_hooks` (required for containment)
//! enforces the pathname unix-socket allow list with cgroup sock_addr unix
//! hooks, which load everywhere from 6.7, and the device allowlist with a
//! cgroup device program. `attach_containment` (optional)
//! adds LSM cgroup programs and global fexit observers, which kernels that
//! refuse trampolines cannot run. Links are pinned the same way. A step a
//! kernel cannot run fails naming the program: the daemon must not believe
//! agents are contained when they are not.
//!
//! Attachment goes through bpf_link_create (kernel >= 5.7), where cgroup
//! links are always multi-attach and the kernel rejects the legacy
//! BPF_F_ALLOW_MULTI flag; hence `CgroupAttachMode::Single` (flags 0) below.
use std::{
    fs::File,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr, FExit,
        LsmCgroup, SockOps, links::FdLink,
    },
};

use agent_common::{KernelOffsets, SockAddrOffsets};

pub use super::unix_hooks::attach_required_hooks;
use super::{BpfError, btf};

/// The object built from agent-ebpf by build.rs.
pub(super) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent-ebpf"));

const SOCK_ADDR_PROGRAMS: [&str; 6] = [
    "cordon_connect4",
    "cordon_connect6",
    "cordon_sendmsg4",
    "cordon_sendmsg6",
    "cordon_recvmsg4",
    "cordon_recvmsg6",
];
const SOCK_CREATE: &str = "cordon_sock_create";
const SOCK_OPS: &str = "cordon_rekey";
const EGRESS: &str = "cordon_egress";

/// (program, LSM hook) of the containment decisions.
const LSM_PROGRAMS: [(&str, &str); 3] = [
    ("cordon_file_open", "file_open"),
    ("cordon_unix_connect", "socket_connect"),
    ("cordon_unix_sendmsg", "socket_sendmsg"),
];
/// (program, kernel function) of the observers.
const OBSERVERS: [(&str, &str); 7] = [
    ("cordon_obs_file_open", "security_file_open"),
    ("cordon_obs_connect", "security_socket_connect"),
    ("cordon_obs_sendmsg", "security_socket_sendmsg"),
    ("cordon_obs_unix_stream", "security_unix_stream_connect"),
    ("cordon_obs_unix_send", "security_unix_may_send"),
    ("cordon_obs_ptrace", "security_ptrace_access_check"),
    ("cordon_obs_kill", "security_task_kill"),
];
const SECURITYFS: &str = "/sys/kernel/security";

/// The link pins a daemon leaves in its pin directory: forced egress
/// always, plus the LSM and observer links when `lsm` (the optional layer
/// attached). `cordon doctor` checks each is there.
pub fn pinned_links(lsm: bool) -> Vec<String> {
    let mut names: Vec<&str> = SOCK_ADDR_PROGRAMS.to_vec();
    names.extend([SOCK_CREATE, SOCK_OPS, EGRESS]);
    names.extend(super::unix_hooks::REQUIRED_HOOKS.iter().map(|(n, _, _)| *n));
    if lsm {
        names.extend(LSM_PROGRAMS.iter().map(|(n, _)| *n));
        names.extend(OBSERVERS.iter().map(|(n, _)| *n));
    }
    names.into_iter().map(|n| format!("link_{n}")).collect()
}

/// Loads one program, attaches it, and pins its link.
macro_rules! attach_pinned {
    ($ebpf:expr, $ty:ty, $name:expr, $pin_dir:expr, |$p:ident| $attach:expr) => {{
        let name: &'static str = $name;
        let $p: &mut $ty = program($ebpf, name)?;
        $p.load()
            .map_err(|source| BpfError::Program { name, source })?;
        let id = $attach.map_err(|source| BpfError::Program { name, source })?;
        let link: FdLink = $p
            .take_link(id)
            .map_err(|source| BpfError::Program { name, source })?
            .try_into()
            .map_err(|source| BpfError::Link { name, source })?;
        pin_link(link, $pin_dir, name)?;
    }};
}

/// Loads the object (adopting pinned maps), attaches all programs to
/// `cgroup` and pins their links in `pin_dir`. The returned `Ebpf` owns the
/// maps the daemon uses.
pub fn attach_all(cgroup: &Path, pin_dir: &Path) -> Result<Ebpf, BpfError> {
    std::fs::create_dir_all(pin_dir).map_err(|source| BpfError::Io {
        path: pin_dir.into(),
        source,
    })?;
    // Offsets only matter to the containment programs; without BTF they
    // keep their invalid placeholder and attach_containment refuses.
    let offsets = kernel_offsets().unwrap_or(KernelOffsets::UNSET);
    // Likewise for the unix hooks: attach_required_hooks refuses without them.
    let unix_offsets = sock_addr_offsets().unwrap_or(SockAddrOffsets::UNSET);
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(pin_dir)
        .override_global("CORDON_KOFFSETS", &offsets, true)
        .override_global("CORDON_UNIX_OFFSETS", &unix_offsets, true)
        .load(EBPF_OBJECT)?;
    let cg = File::open(cgroup).map_err(|source| BpfError::Io {
        path: cgroup.into(),
        source,
    })?;

    for name in SOCK_ADDR_PROGRAMS {
        attach_pinned!(&mut ebpf, CgroupSockAddr, name, pin_dir, |p| p
            .attach(&cg, CgroupAttachMode::Single));
    }
    attach_pinned!(&mut ebpf, CgroupSock, SOCK_CREATE, pin_dir, |p| p
        .attach(&cg, CgroupAttachMode::Single));
    attach_pinned!(&mut ebpf, SockOps, SOCK_OPS, pin_dir, |p| p
        .attach(&cg, CgroupAttachMode::Single));
    attach_pinned!(&mut ebpf, CgroupSkb, EGRESS, pin_dir, |p| p.attach(
        &cg,
        CgroupSkbAttachType::Egress,
        CgroupAttachMode::Single
    ));
    Ok(ebpf)
}

fn kernel_offsets() -> Result<KernelOffsets, BpfError> {
    Ok(btf::Btf::from_file(Path::new(btf::VMLINUX))?.kernel_offsets()?)
}

pub(super) fn sock_addr_offsets() -> Result<SockAddrOffsets, BpfError> {
    Ok(btf::Btf::from_file(Path::new(btf::VMLINUX))?.sock_addr_offsets()?)
}

/// The optional LSM layer of containment: loads and attaches the LSM
/// cgroup programs and fexit observers of an object `attach_all` returned,
/// at the same `cgroup`, pinning their links in `pin_dir`. Every program
/// is loaded (verified) before any is attached, so a refusal leaves none
/// running. Kernels that refuse trampoline programs (lockdown VMs) fail
/// here; the unix allow list is then enforced by `attach_required_hooks`
/// alone, which is what containment requires.
pub fn attach_containment(ebpf: &mut Ebpf, cgroup: &Path, pin_dir: &Path) -> Result<(), BpfError> {
    // The offsets the object was loaded with came from the same BTF.
    kernel_offsets()?;
    ensure_bpf_lsm()?;
    let kernel_btf = aya::Btf::from_sys_fs().map_err(BpfError::KernelBtf)?;
    let cg = File::open(cgroup).map_err(|source| BpfError::Io {
        path: cgroup.into(),
        source,
    })?;
    for (name, hook) in LSM_PROGRAMS {
        let p: &mut LsmCgroup = program(ebpf, name)?;
        p.load(hook, &kernel_btf)
            .map_err(|source| BpfError::Lsm { name, hook, source })?;
    }
    for (name, function) in OBSERVERS {
        let p: &mut FExit = program(ebpf, name)?;
        p.load(function, &kernel_btf)
            .map_err(|source| BpfError::Observer {
                name,
                function,
                source,
            })?;
    }
    for (name, hook) in LSM_PROGRAMS {
        let err = |source| BpfError::Lsm { name, hook, source };
        let p: &mut LsmCgroup = program(ebpf, name)?;
        let id = p.attach(&cg).map_err(err)?;
        let link: FdLink = p.take_link(id).map_err(err)?.into();
        pin_link(link, pin_dir, name)?;
    }
    for (name, function) in OBSERVERS {
        let err = |source| BpfError::Observer {
            name,
            function,
            source,
        };
        let p: &mut FExit = program(ebpf, name)?;
        let id = p.attach().map_err(err)?;
        let link: FdLink = p.take_link(id).map_err(err)?.into();
        pin_link(link, pin_dir, name)?;
    }
    Ok(())
}

/// LSM cgroup programs load and attach even when the BPF LSM is not
/// active, and then never run: refuse instead of failing open. securityfs
/// is mounted if the host has not (it only exposes the kernel's state).
/// Whether `name` is in the kernel's active LSM list
/// (`/sys/kernel/security/lsm`, comma-separated).
pub fn lsm_listed(list: &str, name: &str) -> bool {
    list.trim().split(',').any(|l| l == name)
}

fn ensure_bpf_lsm() -> Result<(), BpfError> {
    let list = Path::new(SECURITYFS).join("lsm");
    if !list.exists() {
        nix::mount::mount(
            Some("securityfs"),
            SECURITYFS,
            Some("securityfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|source| BpfError::Mount {
            path: SECURITYFS.into(),
            source,
        })?;
    }
    let active = std::fs::read_to_string(&list).map_err(|source| BpfError::Io {
        path: list.clone(),
        source,
    })?;
    if lsm_listed(&active, "bpf") {
        Ok(())
    } else {
        Err(BpfError::BpfLsmInactive {
            active: active.trim().into(),
        })
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, BpfError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(BpfError::MissingProgram { name })?
        .try_into()
        .map_err(|source| BpfError::Program { name, source })
}

/// Pins under a temporary name, then renames over the old pin so the
/// previous link (if any) is released only after the new one is attached.
fn pin_link(link: FdLink, dir: &Path, prog: &'static str) -> Result<(), BpfError> {
    let final_path = dir.join(format!("link_{prog}"));
    // bpffs refuses names containing a dot.
    let tmp = dir.join(format!("next_link_{prog}"));
    let _ = std::fs::remove_file(&tmp);
    link.pin(&tmp).map_err(|source| BpfError::Pin {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &final_path).map_err(|source| BpfError::Io {
        path: final_path,
        source,
    })
}

/// Releases the pins of other map ABI versions beside `pin_dir`. Called
/// once this version's programs are attached and configured: a daemon of
/// another version left its links attached (enforcing with its own maps)
/// until now, so an upgrade across an ABI change never has a moment with
/// no program attached. Returns the directories released.
pub fn retire_other_versions(pin_dir: &Path) -> Result<Vec<PathBuf>, BpfError> {
    let mut retired = Vec::new();
    for dir in super::bpffs::other_versions(pin_dir) {
        detach_all(&dir)?;
        retired.push(dir);
    }
    Ok(retired)
}

/// Removes every pin (links first, so programs detach, then maps) and the
/// pin directory. Links held open by a running daemon stay attached until
/// it exits; callers stop the daemon first.
pub fn detach_all(pin_dir: &Path) -> Result<Vec<PathBuf>, BpfError> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(pin_dir) else {
        return Ok(removed);
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    // Links before maps.
    paths.sort_by_key(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("link_"))
    });
    for p in paths {
        std::fs::remove_file(&p).map_err(|source| BpfError::Io {
            path: p.clone(),
            source,
        })?;
        removed.push(p);
    }
    let _ = std::fs::remove_dir(pin_dir);
    if let Some(ns) = pin_dir.parent() {
        let _ = std::fs::remove_dir(ns);
    }
    Ok(removed)
}
