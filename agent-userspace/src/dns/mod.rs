//! Cordon's resolver. Agents' DNS datagrams arrive here (sendmsg/connect
//! hooks); each query is a `dns.query {name, type}` action. Allowed queries
//! are forwarded to the configured upstreams, and every address an answer
//! carries is remembered per agent so `tcp.connect` rules can match on the
//! name the agent resolved rather than on bare IPs.
mod names;
mod server;
mod upstream;

pub use names::NameCache;
pub use server::serve;
