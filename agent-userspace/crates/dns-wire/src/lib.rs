//! The wire side of Cordon's resolver, kept apart from its sockets so it can
//! be unit-tested and fuzzed: an agent's query is read into a [`Query`]
//! (what to decide on, and the REFUSED / SERVFAIL answers that echo it), and
//! an upstream's reply is read into the addresses Cordon remembers
//! ([`answered_addresses`]). Everything here is a plain function of bytes;
//! the daemon's `dns/server.rs` does the I/O and the policy decision.

mod answer;
mod query;

pub use answer::{Answered, answered_addresses};
pub use query::{Query, Question};
