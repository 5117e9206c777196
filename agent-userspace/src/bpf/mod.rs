//! Loading, attaching and pinning Cordon's eBPF programs, and typed access
//! to the maps they share with the daemon.
pub mod bpffs;
pub mod btf;
pub mod contain;
mod contain_decode;
#[cfg(test)]
mod contain_tests;
pub mod load;
pub mod maps;
pub mod raw_prog;
mod take;
mod unix_hooks;

use std::path::PathBuf;

pub use load::{attach_all, detach_all};
pub use maps::EnforcementMaps;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount bpffs at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF program {name} is missing from the object")]
    MissingProgram { name: &'static str },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("eBPF link {name}: {source}")]
    Link {
        name: &'static str,
        #[source]
        source: aya::programs::links::LinkError,
    },
    #[error("reading kernel struct offsets: {0}")]
    Btf(#[from] btf::BtfError),
    #[error("loading the kernel's BTF: {0}")]
    KernelBtf(#[source] aya::BtfError),
    #[error(
        "the BPF LSM is not active (active LSMs: {active}); containment needs `bpf` in the \
         kernel's lsm= list"
    )]
    BpfLsmInactive { active: String },
    #[error("containment program {name} on LSM hook {hook}: {source}")]
    Lsm {
        name: &'static str,
        hook: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("containment observer {name} (fexit on {function}) cannot load or attach: {source}")]
    Observer {
        name: &'static str,
        function: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("unix socket hooks: {0}")]
    Unix(#[from] raw_prog::RawProgError),
    #[error("containment profile: {0}")]
    Profile(#[from] contain::ProfileError),
}
