//! Stage 3: the request as an action. The pinned connectors match the
//! head; when a route takes parameters from the body, a bounded prefix is
//! read (and replayed ahead of the rest of the stream).
use cordon_connectors::{Action, RequestHead};
use http::{HeaderMap, header};
use hyper::body::Incoming;

use super::head::Head;
use crate::{
    proxy::body::{self, ProxyBody},
    request::Pinned,
};

pub struct Read {
    pub action: Action,
    /// The body, whole again (the prefix replayed before the rest).
    pub body: ProxyBody,
}

/// Matches the request; the error is why its body could not be read.
pub async fn read(
    pinned: &Pinned,
    head: &Head,
    headers: &HeaderMap,
    incoming: Incoming,
) -> Result<Read, String> {
    let request = RequestHead {
        method: &head.method,
        host: &head.host,
        port: head.port,
        path: &head.path,
        query: head.query.as_deref(),
        headers,
    };
    let route = pinned.connectors.match_head(&request);
    if !route.body_prefix_needed() {
        return Ok(Read {
            action: route.into_action(),
            body: body::boxed(incoming),
        });
    }
    let (prefix, rest) = body::take_prefix(incoming, route.body_limit())
        .await
        .map_err(|e| format!("reading the request body: {e}"))?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    Ok(Read {
        action: route.complete(&prefix, ctype),
        body: rest,
    })
}
