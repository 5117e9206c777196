//! What the stages of the request path share, and where the proxy, the
//! resolver and the daemon meet without importing each other:
//! - `pinned`: the one snapshot of policy and connectors a request is
//!   decided under;
//! - `actor`: who is asking, as the kernel attributed the flow;
//! - `decider`: the question (`Ask`), the answer (`Answer`) and the trait
//!   the daemon implements to give it;
//! - `refusal`: the one refusal type;
//! - `record`: decision records and how they are appended;
//! - `caps`: per-agent caps as the proxy and the resolver ask them.
//!
//! The path a request takes is drawn in `docs/architecture.md`.
pub mod actor;
pub mod caps;
pub mod decider;
pub mod pinned;
pub mod probes;
pub mod record;
pub mod refusal;

pub use actor::Actor;
pub use decider::{Answer, Ask, Decider};
pub use pinned::{Pinned, Snapshots};
pub use refusal::{Attribution, Kind, Recorded, Refusal};
