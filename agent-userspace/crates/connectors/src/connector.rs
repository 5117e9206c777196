//! Loaded connectors and the set the proxy consults.

use crate::credential::CredentialSpec;
use crate::host::{HostPattern, normalize_host};
use crate::mcp::McpEndpoint;
use crate::param::{ParamSpec, ParamType};
use crate::pricing::Pricing;
use crate::template::PathTemplate;
use http::Method;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Body bytes `RouteMatch::complete` reads at most unless the caller chooses otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// One connector file, checked and compiled.
#[derive(Debug)]
pub struct Connector {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) file: PathBuf,
    pub(crate) hosts: Vec<HostPattern>,
    pub(crate) credential: Option<CredentialSpec>,
    pub(crate) credential_hosts: Vec<(HostPattern, CredentialSpec)>,
    pub(crate) routes: Vec<Arc<Route>>,
    pub(crate) pricing: Option<Pricing>,
    pub(crate) mcp: Vec<McpEndpoint>,
}

/// One `[[route]]`.
#[derive(Debug)]
pub(crate) struct Route {
    /// `None` matches any method (`method = "*"`).
    pub method: Option<Method>,
    pub hosts: Option<Vec<HostPattern>>,
    pub template: PathTemplate,
    pub query: Vec<(String, String)>,
    pub action: String,
    pub params: Vec<ParamSpec>,
    pub enrich: Vec<EnrichRule>,
}

/// An `enrich` entry: a GET whose JSON answer supplies a param.
#[derive(Debug)]
pub(crate) struct EnrichRule {
    pub param: String,
    pub get: PathTemplate,
    pub json_path: String,
    pub ty: Option<ParamType>,
}

/// One line of `cordon connectors list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSummary {
    pub name: String,
    pub description: Option<String>,
    pub hosts: Vec<String>,
    pub routes: usize,
    pub file: PathBuf,
    pub has_credential: bool,
    pub has_pricing: bool,
}

/// Connector names: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub(crate) fn is_connector_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Connector {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file this connector was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn hosts(&self) -> Vec<&str> {
        self.hosts.iter().map(HostPattern::as_str).collect()
    }

    /// The connector's default credential rule.
    pub fn credential(&self) -> Option<&CredentialSpec> {
        self.credential.as_ref()
    }

    /// The credential rule for a request to `host`: a per-host override if one matches,
    /// else the default.
    pub fn credential_for_host(&self, host: &str) -> Option<&CredentialSpec> {
        let host = normalize_host(host);
        self.credential_hosts
            .iter()
            .filter(|(p, _)| p.matches(&host))
            .max_by_key(|(p, _)| p.specificity())
            .map(|(_, c)| c)
            .or(self.credential.as_ref())
    }

    /// Environment variables `cordon run` fills with [`Self::placeholder_value`].
    pub fn placeholder_env(&self) -> &[String] {
        self.credential
            .as_ref()
            .map_or(&[][..], CredentialSpec::placeholder_env)
    }

    /// `cordon-placeholder-<name>`.
    pub fn placeholder_value(&self) -> String {
        crate::placeholder::placeholder_value(&self.name)
    }

    /// Does this connector price usage (LLM APIs), so responses are metered?
    pub fn has_pricing(&self) -> bool {
        self.pricing.is_some()
    }

    /// The configured names of the MCP servers this connector declares (`[[mcp]]`).
    pub fn mcp_servers(&self) -> Vec<&str> {
        self.mcp.iter().map(|e| e.server.as_str()).collect()
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub(crate) fn serves(&self, host: &str) -> Option<usize> {
        self.hosts
            .iter()
            .filter(|p| p.matches(host))
            .map(HostPattern::specificity)
            .max()
    }
}

/// All loaded connectors.
#[derive(Debug)]
pub struct ConnectorSet {
    pub(crate) connectors: Vec<Connector>,
    pub(crate) body_limit: usize,
}

impl ConnectorSet {
    pub(crate) fn new(connectors: Vec<Connector>) -> Self {
        Self {
            connectors,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Set how many body bytes the proxy buffers for body params (default 64 KiB).
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Same as [`Self::with_body_limit`], in place.
    pub fn set_body_limit(&mut self, bytes: usize) {
        self.body_limit = bytes;
    }

    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    pub fn connectors(&self) -> &[Connector] {
        &self.connectors
    }

    pub fn connector(&self, name: &str) -> Option<&Connector> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// The connector serving `host`, the most specific host pattern winning.
    pub fn connector_for_host(&self, host: &str) -> Option<&Connector> {
        self.candidates(&normalize_host(host)).into_iter().next()
    }

    /// Connectors serving `host` (normalised), most specific first; ties keep file order.
    pub(crate) fn candidates(&self, host: &str) -> Vec<&Connector> {
        let mut found: Vec<(usize, &Connector)> = self
            .connectors
            .iter()
            .filter_map(|c| c.serves(host).map(|s| (s, c)))
            .collect();
        found.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
        found.into_iter().map(|(_, c)| c).collect()
    }

    /// For `cordon connectors list`.
    pub fn list(&self) -> Vec<ConnectorSummary> {
        self.connectors
            .iter()
            .map(|c| ConnectorSummary {
                name: c.name.clone(),
                description: c.description.clone(),
                hosts: c.hosts().into_iter().map(String::from).collect(),
                routes: c.routes.len(),
                file: c.file.clone(),
                has_credential: c.credential.is_some(),
                has_pricing: c.pricing.is_some(),
            })
            .collect()
    }
}
