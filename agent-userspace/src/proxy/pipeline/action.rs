//! Stage 3: the request as actions. The pinned connectors match the head;
//! when the actions come from the body (a route's body params, an MCP
//! POST's JSON-RPC messages, a git push's ref commands), a bounded prefix
//! is read and replayed ahead of the rest of the stream. A body that cannot
//! be read in its protocol is refused, never forwarded undecided.
use cordon_connectors::{Action, Completion, ProtocolError, ProtocolKind, RequestHead};
use http::{HeaderMap, header};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::head::Head;
use crate::{
    proxy::body::{self, ProxyBody},
    request::Pinned,
};

pub struct Read {
    /// Every action of the request, in the protocol it came in.
    pub completion: Completion,
    /// How a refusal is answered and which responses are filtered.
    pub protocol: ProtocolKind,
    /// The configured MCP server, for requests to an MCP endpoint.
    pub mcp_server: Option<String>,
    /// The body, whole again (the prefix replayed before the rest).
    pub body: ProxyBody,
}

/// What the head alone said the request is, kept for the record of a body
/// that could not be read.
pub struct Unread {
    pub connector: Option<String>,
    pub action: String,
    pub params: Map<String, Value>,
    pub why: ReadError,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the request body: {0}")]
    Body(#[source] hyper::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// The connectors found nothing to decide (they refuse such bodies
    /// themselves; this keeps "every request has a first action" local).
    #[error("the request holds no action")]
    NoActions,
}

/// Matches the request and reads every action it holds.
pub async fn read(
    pinned: &Pinned,
    head: &Head,
    headers: &HeaderMap,
    incoming: Incoming,
) -> Result<Read, Box<Unread>> {
    let request = RequestHead {
        method: &head.method,
        host: &head.host,
        port: head.port,
        path: &head.path,
        query: head.query.as_deref(),
        headers,
    };
    let route = pinned.connectors.match_head(&request);
    let protocol = route.protocol();
    let mcp_server = route.mcp_server().map(str::to_string);
    if !route.body_prefix_needed() {
        return Ok(Read {
            completion: Completion::Http(route.into_action()),
            protocol,
            mcp_server,
            body: body::boxed(incoming),
        });
    }
    let connector = route.connector().map(str::to_string);
    let action = route.action().to_string();
    let params = route.params().clone();
    let unread = |why: ReadError| {
        Box::new(Unread {
            connector,
            action,
            params,
            why,
        })
    };
    let (prefix, rest) = match body::take_prefix(incoming, route.body_limit()).await {
        Ok(read) => read,
        Err(e) => return Err(unread(ReadError::Body(e))),
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match route.complete_all(&prefix, ctype) {
        Ok(completion) if completion.actions().is_empty() => Err(unread(ReadError::NoActions)),
        Ok(completion) => Ok(Read {
            completion,
            protocol,
            mcp_server,
            body: rest,
        }),
        Err(e) => Err(unread(e.into())),
    }
}

/// The request's first action: the one a plain HTTP request is, whose
/// connector every action of the request shares (one route matched).
pub fn primary(completion: &Completion) -> &Action {
    match completion {
        Completion::Http(a) => a,
        // Never empty: `read` refuses a request without actions.
        Completion::Mcp(r) => &r.calls[0].action,
        Completion::GitPush { actions, .. } => &actions[0],
    }
}

/// Every action, to enrich in place.
pub fn actions_mut(completion: &mut Completion) -> Vec<&mut Action> {
    match completion {
        Completion::Http(a) => vec![a],
        Completion::Mcp(r) => r.calls.iter_mut().map(|c| &mut c.action).collect(),
        Completion::GitPush { actions, .. } => actions.iter_mut().collect(),
    }
}
