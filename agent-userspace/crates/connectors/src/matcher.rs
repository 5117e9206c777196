//! Matching a request head to a route, then completing the action from a body prefix.

use crate::action::{Action, EnrichSpec};
use crate::body::Body;
use crate::completion::Protocol;
use crate::connector::{Connector, ConnectorSet, Route};
use crate::host::normalize_host;
use crate::param::{Inputs, Source};
use crate::{git, grpc, path};
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What the proxy knows before reading the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// Host name without port (from SNI / `Host`).
    pub host: &'a str,
    pub port: u16,
    /// Raw path as sent, percent-encoding intact.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// The result of [`ConnectorSet::match_head`]: the action so far, and whether body
/// params are still missing.
pub struct RouteMatch {
    connector: Option<String>,
    action: String,
    params: Map<String, Value>,
    route: Option<Arc<Route>>,
    captures: Vec<(String, String)>,
    query: Option<String>,
    /// Only the headers pending params read, so a stored `Authorization` cannot leak.
    headers: HeaderMap,
    body_limit: usize,
    pub(crate) protocol: Protocol,
}

impl std::fmt::Debug for RouteMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMatch")
            .field("connector", &self.connector)
            .field("action", &self.action)
            .field("params", &self.params)
            .field("body_prefix_needed", &self.body_prefix_needed())
            .finish_non_exhaustive()
    }
}

impl ConnectorSet {
    /// Find the action for a request head. Never fails: what no route matches is `git.fetch`
    /// / `git.push` for git smart HTTP, else `http.request`.
    pub fn match_head(&self, head: &RequestHead<'_>) -> RouteMatch {
        let host = normalize_host(head.host);
        let candidates = self.candidates(&host);
        let segments = path::normalize(head.path);
        if let Some(segs) = &segments {
            for c in &candidates {
                // A connector's MCP endpoints (exact paths) before its routes.
                for endpoint in &c.mcp {
                    if let Some(exchange) = endpoint.exchange(head.method, &host, segs) {
                        return self.mcp_match(c, &endpoint.server, exchange, head.headers);
                    }
                }
                for route in &c.routes {
                    if let Some(captures) = route_matches(route, &host, head, segs) {
                        let mut m = self.route_match(c, route, captures, head);
                        if is_push(head, segs) {
                            m.protocol = Protocol::GitPush;
                        }
                        return m;
                    }
                }
            }
        }
        let connector = candidates.first().map(|c| c.name.clone());
        let mut params = Map::new();
        params.insert("host".into(), Value::String(host.clone()));
        params.insert("port".into(), Value::from(head.port));
        let git = segments
            .as_deref()
            .and_then(|s| git::recognise(head.method, s, head.query));
        let grpc = segments
            .as_deref()
            .and_then(|s| grpc::recognise(head.method, head.headers, s));
        let mut protocol = Protocol::Http;
        let action = if let Some(call) = grpc {
            params.insert("service".into(), Value::String(call.service));
            params.insert("method".into(), Value::String(call.method));
            "grpc.call"
        } else if let Some(g) = git {
            params.insert("repo".into(), Value::String(g.repo));
            match g.service {
                git::Service::Fetch => "git.fetch",
                git::Service::PushAdvertisement => "git.push.advertise",
                git::Service::Push => {
                    protocol = Protocol::GitPush;
                    "git.push"
                }
            }
        } else {
            params.insert("method".into(), Value::String(head.method.as_str().into()));
            let p = segments
                .as_deref()
                .map_or_else(|| head.path.to_string(), path::join);
            params.insert("path".into(), Value::String(p));
            params.insert(
                "query".into(),
                Value::String(head.query.unwrap_or("").into()),
            );
            "http.request"
        };
        RouteMatch::headless(connector, action, params, self.body_limit, protocol)
    }

    fn route_match(
        &self,
        connector: &Connector,
        route: &Arc<Route>,
        captures: Vec<(String, String)>,
        head: &RequestHead<'_>,
    ) -> RouteMatch {
        let mut params = Map::new();
        let inputs = Inputs {
            captures: &captures,
            query: head.query,
            headers: head.headers,
            body: None,
        };
        let mut headers = HeaderMap::new();
        for p in &route.params {
            if !p.needs_body() {
                if let Some(v) = p.resolve(&inputs) {
                    params.insert(p.name.clone(), v);
                }
                continue;
            }
            for s in &p.sources {
                if let Source::Header(name) = s {
                    for v in head.headers.get_all(name) {
                        headers.append(name.clone(), v.clone());
                    }
                }
            }
        }
        RouteMatch {
            connector: Some(connector.name.clone()),
            action: route.action.clone(),
            params,
            route: Some(Arc::clone(route)),
            captures,
            query: head.query.map(String::from),
            headers,
            body_limit: self.body_limit,
            protocol: Protocol::Http,
        }
    }
}

/// A `POST …/git-receive-pack`, whichever route matched it.
fn is_push(head: &RequestHead<'_>, segments: &[String]) -> bool {
    git::recognise(head.method, segments, head.query)
        .is_some_and(|g| g.service == git::Service::Push)
}

fn route_matches(
    route: &Route,
    host: &str,
    head: &RequestHead<'_>,
    segments: &[String],
) -> Option<Vec<(String, String)>> {
    if route.method.as_ref().is_some_and(|m| m != head.method) {
        return None;
    }
    if let Some(hosts) = &route.hosts
        && !hosts.iter().any(|h| h.matches(host))
    {
        return None;
    }
    for (key, want) in &route.query {
        let mut values = form_urlencoded::parse(head.query.unwrap_or("").as_bytes())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v);
        let first = values.next()?;
        if first != want.as_str() || values.any(|v| v != first) {
            return None;
        }
    }
    route.template.matches(segments)
}

impl RouteMatch {
    /// A match whose action is known from the head alone (no route).
    pub(crate) fn headless(
        connector: Option<String>,
        action: &str,
        params: Map<String, Value>,
        body_limit: usize,
        protocol: Protocol,
    ) -> RouteMatch {
        RouteMatch {
            connector,
            action: action.into(),
            params,
            route: None,
            captures: Vec::new(),
            query: None,
            headers: HeaderMap::new(),
            body_limit,
            protocol,
        }
    }

    /// The connector that matched, or that serves the host of an unmatched request.
    pub fn connector(&self) -> Option<&str> {
        self.connector.as_deref()
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    /// Params known from the head alone.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// Whether a param comes from the body, so the proxy should buffer a prefix of it.
    pub fn body_prefix_needed(&self) -> bool {
        self.protocol.reads_body()
            || self
                .route
                .as_ref()
                .is_some_and(|r| r.params.iter().any(|p| p.needs_body()))
    }

    /// How many body bytes [`Self::complete`] and [`Self::complete_all`] read at most: larger
    /// for MCP messages and git pushes, whose actions come from the whole body.
    pub fn body_limit(&self) -> usize {
        self.protocol.body_limit().unwrap_or(self.body_limit)
    }

    /// The action without a body (as if the body were empty).
    pub fn into_action(self) -> Action {
        self.complete(&[], None)
    }

    /// Finish the action from the first bytes of the body. Pass the whole body if it fits in
    /// [`Self::body_limit`] bytes, else exactly the first `body_limit` bytes: a prefix that
    /// long is treated as cut, and values the cut may have split are left out.
    ///
    /// For MCP messages and git pushes, whose bodies hold several actions, this gives one
    /// summary action (see [`Self::complete_all`], which the proxy should use for them).
    pub fn complete(mut self, body_prefix: &[u8], content_type: Option<&str>) -> Action {
        if let Protocol::Mcp(server, routing) = &self.protocol {
            return crate::completion::mcp_summary(
                server,
                routing,
                self.connector.as_deref(),
                body_prefix,
                self.body_limit(),
            );
        }
        let Some(route) = self.route.take() else {
            return self.finish(Vec::new());
        };
        let pending: Vec<_> = route.params.iter().filter(|p| p.needs_body()).collect();
        if !pending.is_empty() {
            let truncated = body_prefix.len() >= self.body_limit;
            let prefix = &body_prefix[..body_prefix.len().min(self.body_limit)];
            let body = Body::parse(prefix, content_type, truncated);
            let inputs = Inputs {
                captures: &self.captures,
                query: self.query.as_deref(),
                headers: &self.headers,
                body: Some(&body),
            };
            for p in pending {
                if let Some(v) = p.resolve(&inputs) {
                    self.params.insert(p.name.clone(), v);
                }
            }
        }
        let enrich = route
            .enrich
            .iter()
            .filter_map(|rule| {
                let path = rule.get.fill(|name| self.params.get(name).and_then(scalar_text));
                if path.is_none() {
                    tracing::debug!(action = %self.action, param = %rule.param, "enrichment skipped: its path needs a param the request lacks");
                }
                Some(EnrichSpec {
                    param: rule.param.clone(),
                    path: path?,
                    json_path: rule.json_path.clone(),
                    value_type: rule.ty,
                })
            })
            .collect();
        self.finish(enrich)
    }

    pub(crate) fn finish(self, enrich: Vec<EnrichSpec>) -> Action {
        Action {
            connector: self.connector,
            name: self.action,
            params: self.params,
            enrich,
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
