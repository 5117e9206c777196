//! Cordon connectors: data files (`policies/connectors/*.toml`) that turn HTTP requests into
//! structured actions (`github.branch.delete {owner, repo, branch}`), say how a vault secret is
//! put on a request, and price LLM usage. See `docs/connectors.md` for the file format.
//!
//! Matching is two-step because the proxy streams bodies: [`ConnectorSet::match_head`] works
//! from the request head, and [`RouteMatch::complete`] reads body params from a bounded prefix.
//! Requests whose body holds several actions (MCP JSON-RPC batches, git pushes with several
//! refs) are completed with [`RouteMatch::complete_all`]; [`mcp`] and [`git`] also build the
//! in-protocol refusals and filter MCP `tools/list` results.

mod action;
mod body;
mod completion;
mod connector;
mod credential;
mod error;
pub mod git;
mod grpc;
mod host;
mod json_prefix;
mod load;
mod matcher;
pub mod mcp;
mod mcp_load;
mod param;
mod path;
mod placeholder;
mod pricing;
mod route;
mod spec;
mod template;

pub use action::{Action, EnrichSpec};
pub use completion::{Completion, GIT_PUSH_BODY_LIMIT, ProtocolError, ProtocolKind};
pub use connector::{Connector, ConnectorSet, ConnectorSummary, DEFAULT_BODY_LIMIT};
pub use credential::{CredentialScheme, CredentialSpec, Presented, Spellings};
pub use error::{ConnectorError, CredentialError, EnrichError, Problem, TemplateError};
pub use matcher::{RequestHead, RouteMatch};
pub use param::ParamType;
pub use placeholder::{
    PLACEHOLDER_PREFIX, looks_like_foreign_credential, placeholder_connector, placeholder_value,
};
pub use pricing::{ModelPrice, Usage};
