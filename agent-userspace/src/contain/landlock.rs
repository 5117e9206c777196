//! The Landlock layer, applied by `cordon run` to itself just before exec:
//! what the agent may read, execute and write, and the scopes that keep it
//! from signalling processes or reaching abstract unix sockets outside its
//! own domain. A Landlock domain also keeps it from ptrace and from reading
//! `/proc/PID/{environ,mem,...}` of any process outside that domain, which
//! is every process not started by the agent itself.
//!
//! Landlock is inherited across fork and exec and can only be tightened, so
//! a sub-agent started inside gets the intersection of both rulesets.
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetError, RulesetStatus, Scope, path_beneath_rules,
};

use super::plan::LandlockSpec;

/// ABI 6 (Linux 6.12) is the first with signal and abstract-socket scoping;
/// without them containment would be partial, so older kernels are refused.
const ABI_NEEDED: ABI = ABI::V6;

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error(
        "this kernel's Landlock cannot contain the agent (needs Landlock ABI 6, Linux 6.12 or later, with `landlock` in the lsm= list): {0}"
    )]
    Unsupported(RulesetError),
    #[error("building the Landlock ruleset: {0}")]
    Build(RulesetError),
    #[error("Landlock was not fully enforced ({0:?}); refusing to run the agent uncontained")]
    NotEnforced(RulesetStatus),
    #[error("entering the Landlock domain: {0}")]
    Restrict(RulesetError),
}

/// A ruleset ready to be entered. Built before privileges are dropped (it
/// opens every listed path) and entered as the last step before exec.
pub struct Prepared(RulesetCreated);

pub fn prepare(spec: &LandlockSpec) -> Result<Prepared, LandlockError> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    // Write grants never carry read or execute: those come from the read
    // and exec lists only, which have the deny list carved out.
    let write = AccessFs::from_all(ABI_NEEDED) & !(read | AccessFs::Execute);
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI_NEEDED))
        .map_err(LandlockError::Unsupported)?
        .scope(Scope::from_all(ABI_NEEDED))
        .map_err(LandlockError::Unsupported)?
        .create()
        .map_err(LandlockError::Unsupported)?
        // Paths that do not exist are skipped: nothing to allow there.
        .add_rules(path_beneath_rules(&spec.read_parents, AccessFs::ReadDir))
        .map_err(LandlockError::Build)?
        .add_rules(path_beneath_rules(&spec.read, read))
        .map_err(LandlockError::Build)?
        .add_rules(path_beneath_rules(&spec.exec, AccessFs::Execute))
        .map_err(LandlockError::Build)?
        .add_rules(path_beneath_rules(&spec.write, write))
        .map_err(LandlockError::Build)?
        // Refusals reach the kernel audit log from the agent's own
        // programs too (not only from `cordon run` before exec): the
        // daemon turns them into audit records.
        .log_new_exec(true)
        .map_err(LandlockError::Build)?;
    Ok(Prepared(ruleset))
}

impl Prepared {
    /// Enters the domain (setting no_new_privs, so no setuid program can
    /// hand the agent more rights than it has). Only a fully enforced
    /// ruleset counts.
    pub fn enter(self) -> Result<(), LandlockError> {
        let status = self.0.restrict_self().map_err(LandlockError::Restrict)?;
        match status.ruleset {
            RulesetStatus::FullyEnforced => Ok(()),
            other => Err(LandlockError::NotEnforced(other)),
        }
    }
}

/// The kernel's Landlock ABI version, 0 when Landlock is off.
pub fn abi_version() -> i64 {
    // SAFETY: landlock_create_ruleset with a NULL attribute, size 0 and the
    // VERSION flag only returns the ABI version; it touches no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    v.max(0)
}
