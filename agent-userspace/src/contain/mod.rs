//! Host containment: what an agent may do on the host itself, beside what
//! it may do on the network. See docs/containment.md.
//!
//! - `plan`: pure; policy + launch -> the Landlock lists and the kernel deny list.
//! - `landlock`, `fds`, `host_view`: applied by `cordon run` to itself before exec.
//! - `expand`: the filesystem edge of the plan (globs).
//! - `events`: kernel refusals -> audit records (daemon).
pub mod agent_seccomp;
pub mod carve;
pub mod defaults;
pub mod events;
pub mod expand;
pub mod fds;
pub mod host_view;
pub mod kernel;
pub mod landlock;
pub mod landlock_log;
pub mod plan;
pub mod root_seccomp;
pub mod seccomp;

pub use plan::{ContainPlan, LandlockSpec, Launch, PlanError, Protected};
