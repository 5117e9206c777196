//! GitHub App installation tokens.

pub mod api;
pub mod error;
pub mod jwt;
pub mod scope;
pub mod tokens;
