//! The question a request asks and the answer it gets. The proxy and the
//! resolver ask through the `Decider` trait; the daemon answers (policy,
//! approvals, grants, automatic kills, the decision record), so neither
//! side imports the other.
use std::time::Instant;

use cordon_audit::EventKind;
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{actor::Actor, pinned::Pinned, refusal::Refusal};

/// One action to decide.
pub struct Ask<'a> {
    pub kind: EventKind,
    pub actor: &'a Actor,
    pub connector: Option<&'a str>,
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub host: Option<&'a str>,
    /// Method and path, for HTTP requests.
    pub http: Option<(&'a str, &'a str)>,
    pub started: Instant,
}

/// What the caller must do.
#[derive(Debug)]
pub enum Answer {
    /// Forward; `audit_id` is the committed decision record.
    Allow {
        audit_id: u64,
    },
    Refuse(Refusal),
}

pub trait Decider: Send + Sync {
    /// Decides `ask` under `pinned`, records the decision, and waits for a
    /// human where policy says so. A decision that cannot be recorded is a
    /// refusal.
    fn decide<'a>(&'a self, pinned: &'a Pinned, ask: Ask<'a>) -> BoxFuture<'a, Answer>;
}
