//! Completing requests whose body holds several actions: MCP JSON-RPC messages (one action per
//! message) and git pushes (one action per ref). [`RouteMatch::complete_all`] is the entry
//! point the proxy uses for every request; for plain HTTP it gives the same single action as
//! [`RouteMatch::complete`].

use crate::action::Action;
use crate::connector::{Connector, ConnectorSet};
use crate::git::{GitPushError, PackLimits, Push, parse_push};
use crate::matcher::RouteMatch;
use crate::mcp::McpExchange;
use crate::mcp::{MCP_BODY_LIMIT, McpError, McpRequest, RoutingHeaders, parse_request};
use http::HeaderMap;
use serde_json::Map;
use serde_json::Value;

/// Largest push body read (command list and pack); a pack cut here proves less, never more.
pub const GIT_PUSH_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How a matched request's body is read (crate-internal; see [`ProtocolKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    /// A POST of JSON-RPC messages to the MCP server of this name, with its routing headers.
    Mcp(String, RoutingHeaders),
    /// A GET stream or DELETE on the MCP server of this name (action known from the head).
    McpStream(String),
    GitPush,
}

/// What kind of request matched, so the proxy knows how to answer a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    /// Anything else: one action, refused with an HTTP status.
    Http,
    /// JSON-RPC messages POSTed to an MCP endpoint: refuse with [`crate::mcp::denial_response`].
    McpMessages,
    /// The GET stream of an MCP endpoint: one action; filter its `tools/list` results with
    /// [`crate::mcp::ToolsTarget::AnyToolsResult`].
    McpStream,
    /// `POST git-receive-pack`: refuse with [`crate::git::refusal_body`].
    GitPush,
}

impl Protocol {
    pub(crate) fn reads_body(&self) -> bool {
        matches!(self, Protocol::Mcp(..) | Protocol::GitPush)
    }

    pub(crate) fn body_limit(&self) -> Option<usize> {
        match self {
            Protocol::Mcp(..) => Some(MCP_BODY_LIMIT),
            Protocol::GitPush => Some(GIT_PUSH_BODY_LIMIT),
            Protocol::Http | Protocol::McpStream(_) => None,
        }
    }
}

/// A request's actions, with what the proxy needs to answer in the request's protocol.
#[derive(Debug, Clone)]
pub enum Completion {
    Http(Action),
    /// One action per message, each with its JSON-RPC id.
    Mcp(McpRequest),
    /// One action per ref update; `actions[i]` is `push.updates[i]`.
    GitPush {
        push: Push,
        actions: Vec<Action>,
    },
}

impl Completion {
    /// Every action to decide, in request order.
    pub fn actions(&self) -> Vec<&Action> {
        match self {
            Completion::Http(a) => vec![a],
            Completion::Mcp(r) => r.actions().collect(),
            Completion::GitPush { actions, .. } => actions.iter().collect(),
        }
    }

    pub fn into_actions(self) -> Vec<Action> {
        match self {
            Completion::Http(a) => vec![a],
            Completion::Mcp(r) => r.calls.into_iter().map(|c| c.action).collect(),
            Completion::GitPush { actions, .. } => actions,
        }
    }
}

/// Why a body could not be read in its protocol. The proxy answers 400 and audits it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("git push: {0}")]
    GitPush(#[from] GitPushError),
}

impl ConnectorSet {
    pub(crate) fn mcp_match(
        &self,
        connector: &Connector,
        server: &str,
        exchange: McpExchange,
        headers: &HeaderMap,
    ) -> RouteMatch {
        let mut params = Map::new();
        params.insert("server".into(), Value::String(server.into()));
        let (action, protocol) = match exchange.action() {
            Some(name) => (name, Protocol::McpStream(server.into())),
            None => (
                "mcp.request",
                Protocol::Mcp(server.into(), RoutingHeaders::from_headers(headers)),
            ),
        };
        RouteMatch::headless(
            Some(connector.name.clone()),
            action,
            params,
            self.body_limit,
            protocol,
        )
    }
}

impl RouteMatch {
    /// How this request's body is read and its refusal answered.
    pub fn protocol(&self) -> ProtocolKind {
        match self.protocol {
            Protocol::Http => ProtocolKind::Http,
            Protocol::Mcp(..) => ProtocolKind::McpMessages,
            Protocol::McpStream(_) => ProtocolKind::McpStream,
            Protocol::GitPush => ProtocolKind::GitPush,
        }
    }

    /// The configured MCP server name, for requests to an MCP endpoint.
    pub fn mcp_server(&self) -> Option<&str> {
        match &self.protocol {
            Protocol::Mcp(s, _) | Protocol::McpStream(s) => Some(s),
            _ => None,
        }
    }

    /// Every action of the request, from the body prefix (same contract as
    /// [`Self::complete`]: the whole body if it fits in [`Self::body_limit`], else exactly
    /// that many bytes). An MCP body longer than the limit is an error; a git push body cut
    /// at the limit still gives every ref (the command list comes first), but less of the
    /// pack to prove fast-forwards with.
    pub fn complete_all(
        self,
        body_prefix: &[u8],
        content_type: Option<&str>,
    ) -> Result<Completion, ProtocolError> {
        let limit = self.body_limit();
        match self.protocol.clone() {
            Protocol::Http | Protocol::McpStream(_) => {
                Ok(Completion::Http(self.complete(body_prefix, content_type)))
            }
            Protocol::Mcp(server, routing) => {
                if body_prefix.len() >= limit {
                    return Err(McpError::TooLarge { limit }.into());
                }
                let request = parse_request(&server, self.connector(), body_prefix)?;
                routing.check(&request)?;
                Ok(Completion::Mcp(request))
            }
            Protocol::GitPush => {
                let prefix = &body_prefix[..body_prefix.len().min(limit)];
                let push = parse_push(prefix, &PackLimits::default())?;
                let head = self.complete(&[], None);
                let actions = push
                    .updates
                    .iter()
                    .map(|u| {
                        let mut a = head.clone();
                        a.params.extend(u.params());
                        a
                    })
                    .collect();
                Ok(Completion::GitPush { push, actions })
            }
        }
    }
}

/// The single action [`RouteMatch::complete`] gives for an MCP body: the message's own action
/// when there is exactly one, else `mcp.batch {server, size}` or `mcp.invalid {server, error}`,
/// names a policy written for tool calls does not allow by accident.
pub(crate) fn mcp_summary(
    server: &str,
    routing: &RoutingHeaders,
    connector: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Action {
    let parsed = if body.len() >= limit {
        Err(McpError::TooLarge { limit })
    } else {
        parse_request(server, connector, body).and_then(|r| routing.check(&r).map(|()| r))
    };
    let mut params = serde_json::Map::new();
    params.insert("server".into(), Value::String(server.into()));
    let name = match parsed {
        Ok(mut r) if r.calls.len() == 1 && !r.batch => return r.calls.remove(0).action,
        Ok(r) => {
            params.insert("size".into(), Value::from(r.calls.len()));
            "mcp.batch"
        }
        Err(e) => {
            params.insert("error".into(), Value::String(e.to_string()));
            "mcp.invalid"
        }
    };
    Action {
        connector: connector.map(String::from),
        name: name.into(),
        params,
        enrich: Vec::new(),
    }
}
