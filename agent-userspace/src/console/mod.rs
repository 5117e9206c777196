//! The web console (`[console]` / `cordon daemon --console ADDR`): a page
//! served from the binary itself that shows the live audit trail, agents,
//! approvals, grants, the policy and its history, learn-mode proposals and
//! vault names, and answers approvals and kills through the same
//! operations as the control socket.
//!
//! - `config`: `[console]` and the daemon's console flags;
//! - `token`: the login token (only its hash is kept);
//! - `session`, `guard`: sessions, Host/Origin/CSRF checks (pure);
//! - `proxy_auth`: who asks, behind the operator's reverse proxy;
//! - `routes`: which paths exist and which change state (pure);
//! - `respond`: responses with the security headers (CSP);
//! - `views`, `vault_view`, `history`, `actions`, `audit_feed`: what each
//!   route does;
//! - `listen`: the unix socket (mode, group, peer checks);
//! - `serve`: the listener and the order the checks run in.
pub mod actions;
pub mod audit_feed;
pub mod config;
pub mod guard;
pub mod history;
pub mod listen;
pub mod proxy_auth;
pub mod respond;
pub mod routes;
pub mod serve;
pub mod session;
pub mod token;
pub mod vault_view;
pub mod views;

pub use serve::spawn;
