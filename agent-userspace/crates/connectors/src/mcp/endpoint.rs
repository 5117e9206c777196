//! An MCP server endpoint declared in a connector file (`[[mcp]]`), and recognising the
//! requests that go to it.

use crate::host::HostPattern;
use http::Method;

/// One `[[mcp]]` entry, checked.
#[derive(Debug, Clone)]
pub(crate) struct McpEndpoint {
    /// The configured name: `params.server` of every action.
    pub server: String,
    /// Subset of the connector's hosts; `None` means all of them.
    pub hosts: Option<Vec<HostPattern>>,
    /// Streamable HTTP endpoint (normalised segments); also where the older transport's GET
    /// stream lives unless `sse_path` says otherwise.
    pub path: Vec<String>,
    /// Older HTTP+SSE transport: the GET that opens the stream.
    pub sse_path: Option<Vec<String>>,
    /// Older HTTP+SSE transport: where messages are POSTed (the stream's `endpoint` event
    /// announces it; its query, the session id, is not part of the match).
    pub messages_path: Option<Vec<String>>,
}

/// What an HTTP request to an MCP endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpExchange {
    /// A POST of JSON-RPC messages: its actions come from the body.
    Messages,
    /// A GET opening a server-to-client SSE stream: `mcp.stream {server}`. Its `tools/list`
    /// results are filtered by shape ([`crate::mcp::ToolsTarget::AnyToolsResult`]).
    Stream,
    /// A DELETE ending the session: `mcp.session.end {server}`.
    EndSession,
}

impl McpExchange {
    /// The action of a request whose action does not come from its body.
    pub(crate) fn action(self) -> Option<&'static str> {
        match self {
            McpExchange::Messages => None,
            McpExchange::Stream => Some("mcp.stream"),
            McpExchange::EndSession => Some("mcp.session.end"),
        }
    }
}

impl McpEndpoint {
    pub(crate) fn exchange(
        &self,
        method: &Method,
        host: &str,
        segments: &[String],
    ) -> Option<McpExchange> {
        if let Some(hosts) = &self.hosts
            && !hosts.iter().any(|h| h.matches(host))
        {
            return None;
        }
        let at = |p: &Option<Vec<String>>| p.as_deref() == Some(segments);
        let main = self.path == segments;
        match *method {
            Method::POST if main || at(&self.messages_path) => Some(McpExchange::Messages),
            Method::GET if main || at(&self.sse_path) => Some(McpExchange::Stream),
            Method::DELETE if main => Some(McpExchange::EndSession),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> McpEndpoint {
        McpEndpoint {
            server: "gh".into(),
            hosts: Some(vec![HostPattern::parse("mcp.example.com").unwrap()]),
            path: vec!["mcp".into()],
            sse_path: Some(vec!["sse".into()]),
            messages_path: Some(vec!["messages".into()]),
        }
    }

    fn segs(p: &str) -> Vec<String> {
        crate::path::normalize(p).unwrap()
    }

    #[test]
    fn both_transports_are_recognised_by_method_and_path() {
        let e = ep();
        let h = "mcp.example.com";
        assert_eq!(
            e.exchange(&Method::POST, h, &segs("/mcp/")),
            Some(McpExchange::Messages)
        );
        assert_eq!(
            e.exchange(&Method::GET, h, &segs("/mcp")),
            Some(McpExchange::Stream)
        );
        assert_eq!(
            e.exchange(&Method::DELETE, h, &segs("/mcp")),
            Some(McpExchange::EndSession)
        );
        assert_eq!(
            e.exchange(&Method::GET, h, &segs("/sse")),
            Some(McpExchange::Stream)
        );
        assert_eq!(
            e.exchange(&Method::POST, h, &segs("/messages")),
            Some(McpExchange::Messages)
        );
        assert_eq!(e.exchange(&Method::POST, h, &segs("/sse")), None);
        assert_eq!(e.exchange(&Method::PUT, h, &segs("/mcp")), None);
        assert_eq!(
            e.exchange(&Method::POST, "other.example.com", &segs("/mcp")),
            None
        );
        assert_eq!(e.exchange(&Method::POST, h, &segs("/mcp/x")), None);
    }
}
