//! The routing headers of MCP 2026-07-28 requests: `Mcp-Method` mirrors the body's method and
//! `Mcp-Name` its tool name, prompt name or resource URI. A server or a load balancer may act
//! on the header while Cordon judges the body, so the two must agree; a request where they do
//! not is refused as malformed (the SDK's servers refuse it too).

use super::McpError;
use super::request::McpRequest;
use base64::Engine;
use http::HeaderMap;

pub(crate) const METHOD_HEADER: &str = "mcp-method";
pub(crate) const NAME_HEADER: &str = "mcp-name";

/// One routing header as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Routing {
    #[default]
    Absent,
    One(String),
    /// Repeated, not text, or a broken base64 form: never matches anything.
    Invalid,
}

/// `Mcp-Method` and `Mcp-Name` of a request head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RoutingHeaders {
    pub method: Routing,
    pub name: Routing,
}

fn read(headers: &HeaderMap, name: &str, decode: bool) -> Routing {
    let mut values = headers.get_all(name).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return if headers.contains_key(name) {
            Routing::Invalid
        } else {
            Routing::Absent
        };
    };
    let Ok(text) = v.to_str() else {
        return Routing::Invalid;
    };
    if !decode {
        return Routing::One(text.to_string());
    }
    // Values that would not survive as a header travel as `=?base64?<payload>?=`.
    match text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        None => Routing::One(text.to_string()),
        Some(payload) => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map_or(Routing::Invalid, Routing::One),
    }
}

impl RoutingHeaders {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            method: read(headers, METHOD_HEADER, false),
            name: read(headers, NAME_HEADER, true),
        }
    }

    /// Refuse a body whose method or name differs from what the headers say.
    pub(crate) fn check(&self, request: &McpRequest) -> Result<(), McpError> {
        if self.method == Routing::Absent && self.name == Routing::Absent {
            return Ok(());
        }
        let mismatch = |header: &'static str| Err(McpError::HeaderMismatch { header });
        // The headers describe one message; a batch cannot be described by them.
        let [call] = request.calls.as_slice() else {
            return mismatch(METHOD_HEADER);
        };
        if request.batch {
            return mismatch(METHOD_HEADER);
        }
        let method = call.method.as_deref();
        match &self.method {
            Routing::Absent => {}
            Routing::One(m) if Some(m.as_str()) == method => {}
            _ => return mismatch(METHOD_HEADER),
        }
        let body_name = match method {
            Some("tools/call") => call.action.params.get("tool"),
            Some("prompts/get") => call.action.params.get("name"),
            Some("resources/read") => call.action.params.get("uri"),
            _ => None,
        }
        .and_then(|v| v.as_str());
        match (&self.name, body_name) {
            (Routing::Absent, _) => Ok(()),
            (Routing::One(n), Some(b)) if n == b => Ok(()),
            _ => mismatch(NAME_HEADER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::parse_request;
    use http::HeaderValue;

    fn hdrs(list: &[(&'static str, &'static str)]) -> RoutingHeaders {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(*k, HeaderValue::from_static(v));
        }
        RoutingHeaders::from_headers(&h)
    }

    fn call(tool: &str) -> McpRequest {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
        );
        parse_request("s", None, body.as_bytes()).unwrap()
    }

    #[test]
    fn matching_or_absent_headers_pass() {
        let r = call("search_issues");
        assert!(hdrs(&[]).check(&r).is_ok());
        let ok = hdrs(&[("mcp-method", "tools/call"), ("mcp-name", "search_issues")]);
        assert!(ok.check(&r).is_ok());
        // "search_issues" in the base64 form clients use for unsafe values.
        let b64 = hdrs(&[("mcp-name", "=?base64?c2VhcmNoX2lzc3Vlcw==?=")]);
        assert!(b64.check(&r).is_ok());
    }

    #[test]
    fn a_header_naming_another_tool_or_method_is_refused() {
        let r = call("delete_repository");
        let cases = [
            hdrs(&[("mcp-name", "search_issues")]),
            hdrs(&[("mcp-method", "tools/list")]),
            hdrs(&[
                ("mcp-name", "delete_repository"),
                ("mcp-name", "delete_repository"),
            ]),
            hdrs(&[("mcp-name", "=?base64?!!?=")]),
        ];
        for h in cases {
            assert!(
                matches!(h.check(&r), Err(McpError::HeaderMismatch { .. })),
                "{h:?}"
            );
        }
    }
}
