//! The response path of MCP requests: `tools/list` answers (a POST's, and
//! any on the GET stream) lose the tools the agent's policy denies, so an
//! agent is never offered a tool it may not call. The connectors crate
//! rewrites the bytes (`mcp::tools_filter`); this module decides which
//! tools stay, wraps the response body, and reports what was removed.
//!
//! Whether a tool is offered is decided statically under the request's
//! pinned policy: the action `mcp::tool_offer_action` (a call with no
//! arguments) is kept unless the policy denies it. No limit, grant or
//! approval is consumed; calling the tool is decided per call as usual.
//!
//! An SSE answer passes through as it comes, except the event carrying the
//! list; a JSON answer is held (bounded) and released rewritten. A
//! compressed answer cannot be read, so it is refused (Cordon does not
//! offer compression upstream on MCP requests).
use std::{
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
};

use bytes::Bytes;
use cordon_connectors::{
    Action, Completion, ProtocolKind,
    mcp::{self, FilterError, KeepTool, ToolsFilter, ToolsTarget},
};
use cordon_policy::{ActionRequest, HttpInfo, Verdict};
use http::{HeaderMap, Response, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use crate::{
    proxy::{
        answer,
        body::{BoxError, ProxyBody},
    },
    request::{Attribution, Kind, Pinned, Recorded, Refusal},
};

/// Who asked for the list, to decide which tools are offered.
pub struct Offer {
    pub pinned: Pinned,
    pub chain: Vec<String>,
    pub connector: Option<String>,
    pub server: String,
    pub method: String,
    pub host: String,
    pub path: String,
}

impl Offer {
    /// Whether `tool` is offered: anything but a static deny.
    pub fn keeps(&self, tool: &str) -> bool {
        let Some(set) = self.pinned.policy.as_ref() else {
            return false;
        };
        // A learning agent's calls go ahead, so it is offered what it
        // could call (its calls are recorded with what would happen).
        if set.mode_of_chain(&self.chain) == cordon_policy::Mode::Learn {
            return true;
        }
        let action = mcp::tool_offer_action(self.connector.as_deref(), &self.server, tool);
        let decision = set.decide(&ActionRequest {
            chain: &self.chain,
            action: &action.name,
            params: &action.params,
            request: Some(HttpInfo {
                method: &self.method,
                host: &self.host,
                path: &self.path,
            }),
            now: chrono::Utc::now(),
        });
        decision.verdict != Verdict::Deny
    }
}

/// Which answers of an MCP exchange are filtered: those to the POST's
/// `tools/list` requests (and any list an SSE answer carries), every list on
/// the GET stream; `None` for an answer nothing is filtered in (a plain
/// JSON answer to calls, which passes unheld) or Cordon's own refusal.
pub fn target(
    completion: &Completion,
    protocol: ProtocolKind,
    headers: &HeaderMap,
) -> Option<ToolsTarget> {
    if headers.contains_key("x-cordon-decision") {
        return None;
    }
    let sse = header_text(headers, header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
    });
    match (protocol, completion) {
        (ProtocolKind::McpStream, _) => Some(ToolsTarget::AnyToolsResult),
        (ProtocolKind::McpMessages, Completion::Mcp(request)) => {
            let ids = request.tools_list_ids();
            (sse || !ids.is_empty()).then_some(ToolsTarget::Ids(ids))
        }
        _ => None,
    }
}

/// The MCP response as the agent gets it: filtered where `target` says,
/// or, when it cannot be filtered (compressed), refused (502, recorded
/// against the request's allow record `audit_id`).
pub fn respond(
    resp: Response<ProxyBody>,
    completion: &Completion,
    protocol: ProtocolKind,
    offer: Offer,
    audit_id: u64,
    primary: &Action,
) -> Response<ProxyBody> {
    let Some(target) = target(completion, protocol, resp.headers()) else {
        return resp;
    };
    let version = offer.pinned.version().clone();
    match filtered(resp, target, offer, audit_id) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(audit_id, "MCP answer refused: {e}");
            let refusal = Refusal::new(
                Kind::UpstreamFailed,
                format!("the MCP server's answer cannot be filtered: {e}"),
                Attribution::cordon(version),
            )
            .recorded(Recorded::Yes(audit_id));
            answer::response(&refusal, &primary.name, &primary.params)
        }
    }
}

/// The response with its `tools/list` answers filtered. `audit_id` names
/// the request's decision in the log line listing removed tools. A body
/// that cannot be filtered (compressed) is an error: the caller refuses it.
pub fn filtered(
    resp: Response<ProxyBody>,
    target: ToolsTarget,
    offer: Offer,
    audit_id: u64,
) -> Result<Response<ProxyBody>, FilterError> {
    let (mut parts, body) = resp.into_parts();
    let server = offer.server.clone();
    let keep: Box<KeepTool<'static>> = Box::new(move |tool: &str| offer.keeps(tool));
    let filter = mcp::tools_filter(
        header_text(&parts.headers, header::CONTENT_TYPE),
        header_text(&parts.headers, header::CONTENT_ENCODING),
        target,
        keep,
    )?;
    // The rewritten body has another length.
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = FilteredBody {
        inner: body,
        filter: Mutex::new(filter),
        reported: 0,
        held_trailers: None,
        done: false,
        audit_id,
        server,
    };
    Ok(Response::from_parts(parts, body.boxed()))
}

/// A header's value as text; a header that is not text is passed on as
/// such, which the filter then treats as unknown (JSON, held and checked).
fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

struct FilteredBody {
    inner: ProxyBody,
    /// In a mutex only to be `Sync` for the boxed body; never contended.
    filter: Mutex<Box<dyn ToolsFilter>>,
    /// How many removed names are already in the log.
    reported: usize,
    /// Trailers wait until the filter has released what it holds.
    held_trailers: Option<HeaderMap>,
    done: bool,
    audit_id: u64,
    server: String,
}

impl FilteredBody {
    fn filter(&mut self) -> &mut dyn ToolsFilter {
        // A poisoned lock only means a panic elsewhere while filtering; the
        // filter's own state is still what it was.
        &mut **self
            .filter
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs the names removed since the last report.
    fn report(&mut self) {
        let removed = self.filter().removed().to_vec();
        if removed.len() > self.reported {
            tracing::info!(
                audit_id = self.audit_id,
                server = %self.server,
                removed = ?&removed[self.reported..],
                "tools/list answer filtered: tools the policy denies were not offered"
            );
            self.reported = removed.len();
        }
    }

    fn end(&mut self) -> Result<Bytes, BoxError> {
        self.done = true;
        let rest = self.filter().finish().map_err(boxed);
        self.report();
        rest
    }
}

fn boxed(e: FilterError) -> BoxError {
    Box::new(e)
}

impl Body for FilteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(this.held_trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let rest = this.end();
                    return Poll::Ready(match rest {
                        Ok(b) if b.is_empty() => {
                            this.held_trailers.take().map(|t| Ok(Frame::trailers(t)))
                        }
                        Ok(b) => Some(Ok(Frame::data(b))),
                        Err(e) => Some(Err(e)),
                    });
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    // Trailers end the body: release what the filter holds first.
                    this.held_trailers = frame.into_trailers().ok();
                    match this.end() {
                        Ok(b) if b.is_empty() => continue,
                        Ok(b) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
            };
            let out = this.filter().push(&data);
            this.report();
            match out {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                Err(e) => {
                    // The rest must not reach the agent unfiltered.
                    this.done = true;
                    this.held_trailers = None;
                    return Poll::Ready(Some(Err(boxed(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held_trailers.is_none()
    }
}

#[cfg(test)]
mod tests;
