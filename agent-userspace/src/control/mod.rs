//! The control plane: a unix socket speaking one JSON request and one JSON
//! reply per line. Every call is authorised from the kernel's view of the
//! caller (SO_PEERCRED), never from anything the caller says about itself.
pub mod audit_ops;
pub mod audit_read;
pub mod client;
pub mod grant_ops;
pub mod ops;
pub mod proto;
pub mod server;
pub mod stream;
pub mod vault_ops;
