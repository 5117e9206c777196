//! Cordon's policy engine: TOML policy files compiled into an index that
//! decides an agent's action in microseconds.
//!
//! [`PolicySet`] is the static, immutable part (rules, CEL conditions,
//! schedules, the SSRF guard). [`PolicyEngine`] wraps the current set for the
//! daemon and adds what needs state: rate limits and run envelopes. The
//! file format and semantics are in docs/policy.md.

mod agent;
mod bindings;
mod bindings_load;
mod caps;
mod cel_env;
mod compile;
mod contain;
mod decision;
mod duration;
mod engine;
mod error;
mod glob;
mod learn;
mod limits;
mod load;
mod network;
mod runs;
mod schedule;
mod set;
mod source;

pub use bindings::{Binding, BindingOutcome, BindingTrace, Bindings, choose, explain_choice};
pub use caps::CapOverrides;
pub use compile::{Envelope, Limit, OnExceed};
pub use contain::{ContainMode, ContainPolicy, PathPattern};
pub use decision::{ActionRequest, Decision, HttpInfo, RuleTrace, Source, Verdict};
pub use engine::{Enforcement, LimitHit, Outcome, PolicyEngine, RunContext};
pub use error::PolicyError;
pub use learn::{Mode, Would, relax};
pub use runs::{EnvelopeBound, EnvelopeBreach, RunUsage};
pub use set::PolicySet;
