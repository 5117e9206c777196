//! The Model Context Protocol as actions (Streamable HTTP and the older HTTP+SSE transport).
//!
//! - [`parse_request`]: a POSTed JSON-RPC body (one message or a batch) → one [`McpCall`]
//!   (id + [`crate::Action`]) per message;
//! - [`denial_response`]: the in-protocol refusal, a JSON-RPC error per request id;
//! - [`tools_filter`]: a streaming rewriter of `tools/list` results (JSON or SSE) that drops
//!   the tools a callback rejects.
//!
//! Endpoints are declared in connector files (`[[mcp]]`, see docs/connectors.md) and matched
//! by [`crate::ConnectorSet::match_head`].

mod deny;
mod endpoint;
mod filter_json;
mod filter_sse;
mod headers;
mod names;
mod request;
mod sse;
mod strict_json;
mod tools_list;

pub use deny::{CallDenial, McpDenial, NOT_RUN_MESSAGE, POLICY_DENIED_CODE, denial_response};
pub(crate) use endpoint::McpEndpoint;
pub use endpoint::McpExchange;
pub use filter_json::{JsonToolsFilter, MAX_JSON_RESPONSE};
pub use filter_sse::{MAX_SSE_EVENT, SseToolsFilter};
pub(crate) use headers::RoutingHeaders;
pub use request::{InvalidMessage, MAX_BATCH, McpCall, McpRequest, MessageKind, parse_request};
pub use tools_list::{KeepTool, ToolsTarget, UNFILTERABLE_MESSAGE, tool_offer_action};

use bytes::Bytes;

/// Largest MCP POST body read; a longer one is refused (its calls cannot all be seen).
pub const MCP_BODY_LIMIT: usize = 1024 * 1024;

/// Why a POSTed MCP body is not valid JSON-RPC. The proxy answers 400 and audits it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error("the MCP request body is not JSON: {0}")]
    NotJson(String),
    #[error("the MCP request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("an empty JSON-RPC batch")]
    EmptyBatch,
    #[error("a JSON-RPC batch of {0} messages (at most {MAX_BATCH})")]
    BatchTooLarge(usize),
    #[error("two messages of the batch share one id")]
    DuplicateId,
    #[error("the {header} header does not match the request body")]
    HeaderMismatch { header: &'static str },
    #[error("JSON-RPC message {index}: {reason}")]
    Invalid {
        index: usize,
        reason: InvalidMessage,
    },
}

/// Why a filtered response stream must be ended (or not started).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("a server-sent event exceeded {MAX_SSE_EVENT} bytes before it ended")]
    EventTooLarge,
    /// A compressed answer cannot be read, so it cannot be filtered. The proxy should not
    /// offer compression upstream on MCP requests (drop `Accept-Encoding`), and refuse an
    /// answer that is compressed anyway.
    #[error("the answer is encoded ({0}); a tools/list answer must be read to be filtered")]
    Encoded(String),
}

/// A response body rewriter: feed it every chunk in order, send what it returns, then send
/// what `finish` returns. An error means the rest of the response must not be sent.
pub trait ToolsFilter: Send {
    fn push(&mut self, chunk: &[u8]) -> Result<Bytes, FilterError>;
    fn finish(&mut self) -> Result<Bytes, FilterError>;
    /// Names of the tools removed so far (for the audit record).
    fn removed(&self) -> &[String];
}

/// The filter for a response of `content_type`: SSE for `text/event-stream`, otherwise a
/// JSON body (which turns anything unreadable into an error, never the unfiltered list).
/// A `content_encoding` other than `identity` is refused: compressed bytes cannot be read.
pub fn tools_filter<'a>(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    target: ToolsTarget,
    keep: Box<KeepTool<'a>>,
) -> Result<Box<dyn ToolsFilter + 'a>, FilterError> {
    if let Some(enc) = content_encoding
        && !enc.trim().eq_ignore_ascii_case("identity")
    {
        return Err(FilterError::Encoded(enc.to_string()));
    }
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    Ok(if media.as_deref() == Some("text/event-stream") {
        Box::new(SseToolsFilter::new(target, keep))
    } else {
        Box::new(JsonToolsFilter::new(target, keep))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_answer_cannot_be_filtered() {
        let keep = || Box::new(|_: &str| true) as Box<KeepTool<'static>>;
        let target = || ToolsTarget::AnyToolsResult;
        assert!(matches!(
            tools_filter(Some("application/json"), Some("gzip"), target(), keep()),
            Err(FilterError::Encoded(_))
        ));
        assert!(
            tools_filter(
                Some("text/event-stream"),
                Some("identity"),
                target(),
                keep()
            )
            .is_ok()
        );
        assert!(tools_filter(None, None, target(), keep()).is_ok());
    }
}
