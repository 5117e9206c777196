//! Building the agents' seccomp filters. Each refuses a few system calls
//! (some only for certain arguments) with `EPERM` and allows everything
//! else: the filters close what Landlock and the cgroup hooks do not see,
//! they are not the containment itself.
use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building a seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("compiling a seccomp filter: {0}")]
    Compile(seccompiler::BackendError),
}

/// A filter refusing each listed call when any of its rules matches (a call
/// with no rules is refused whatever its arguments).
pub fn refusing(calls: BTreeMap<i64, Vec<SeccompRule>>) -> Result<BpfProgram, SeccompError> {
    let arch = if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    };
    let filter = SeccompFilter::new(
        calls,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    filter.try_into().map_err(SeccompError::Compile)
}
