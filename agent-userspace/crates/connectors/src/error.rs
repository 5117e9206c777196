//! Errors of this crate. Load errors always carry the file and the line that is wrong.

use std::path::PathBuf;

/// Why the connector directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot read connector directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read connector file {file}: {source}")]
    ReadFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        problem: Problem,
    },
}

/// What exactly is wrong at a given place of a connector file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    Syntax(String),
    #[error("bad path template: {0}")]
    Template(#[from] TemplateError),
    #[error("bad param source {source_text:?}: {reason}")]
    ParamSource {
        source_text: String,
        reason: &'static str,
    },
    #[error(
        "param {param:?}: source {source_text:?} names path capture {{{capture}}} which the path template does not have"
    )]
    UnknownCapture {
        param: String,
        source_text: String,
        capture: String,
    },
    #[error("bad {what} name {name:?}: {reason}")]
    BadName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("bad host pattern {pattern:?}: {reason}")]
    HostPattern { pattern: String, reason: String },
    #[error("route host {host:?} is not one of the connector's hosts")]
    RouteHostNotInConnector { host: String },
    #[error("duplicate route: {method} {path} is already defined at line {first_line}")]
    DuplicateRoute {
        method: String,
        path: String,
        first_line: usize,
    },
    #[error("connector name {name:?} is already used by {}", first_file.display())]
    DuplicateConnector { name: String, first_file: PathBuf },
    #[error("host pattern {pattern:?} is already claimed by connector {other:?}")]
    DuplicateHost { pattern: String, other: String },
    #[error("bad HTTP method {0:?}")]
    Method(String),
    #[error("credential: {0}")]
    Credential(&'static str),
    #[error("enrich param {param:?}: {reason}")]
    Enrich { param: String, reason: String },
    #[error("bad pricing entry {model:?}: {reason}")]
    Pricing { model: String, reason: String },
    #[error("mcp server {server:?}: {reason}")]
    Mcp { server: String, reason: String },
}

/// Why a path template is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("must start with '/'")]
    NoLeadingSlash,
    #[error("empty segment (double or trailing '/')")]
    EmptySegment,
    #[error(
        "segment {0:?} mixes literal text and a capture; a segment is either text or one {{capture}}"
    )]
    MixedSegment(String),
    #[error(
        "capture name {0:?} must be lowercase letters, digits and '_' and start with a letter or '_'"
    )]
    BadCaptureName(String),
    #[error("capture {{{0}}} appears twice")]
    DuplicateCapture(String),
    #[error("at most one {{name...}} capture per template")]
    TwoRestCaptures,
    #[error("literal segment {0:?} must not contain '%', '?' or '#'")]
    BadLiteral(String),
}

/// Why a credential could not be applied to a request.
#[derive(thiserror::Error)]
pub enum CredentialError {
    #[error("the secret contains bytes that are not allowed in an HTTP header")]
    InvalidHeaderValue,
    #[error("basic credential without a fixed username needs a secret of the form user:password")]
    BasicNeedsUserPassword,
    #[error("could not rebuild the request URI with the credential query parameter")]
    InvalidUri,
}

// Written by hand so that no variant can ever grow a field that prints the secret.
impl std::fmt::Debug for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialError({self})")
    }
}

/// Why a fetched enrichment body could not be applied to an action.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("enrichment response for {param:?} is not JSON: {source}")]
    NotJson {
        param: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("enrichment response for {param:?} has no usable value at {json_path:?}")]
    Missing { param: String, json_path: String },
}
