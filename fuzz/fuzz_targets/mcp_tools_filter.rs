//! The MCP `tools/list` answer filter (`cordon_connectors::mcp::tools_filter`,
//! JSON and server-sent events), fed the upstream's answer in pieces. The
//! agent reads what comes out; here serde_json reads it as an agent would.
//!
//! Checks: nothing panics; the output does not depend on how the answer is
//! cut into chunks; and no tool the policy refuses (here: any name starting
//! with `d`) is in any `result.tools` the agent can read from the output.
#![no_main]

use cordon_connectors::mcp::{ToolsTarget, tools_filter};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn refused(name: &str) -> bool {
    name.starts_with('d')
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let content_type = if mode & 1 == 0 {
        "application/json"
    } else {
        "text/event-stream"
    };
    let chunk = usize::from(mode >> 1).max(1);
    let whole = filter(content_type, body, body.len().max(1));
    let pieces = filter(content_type, body, chunk);
    assert_eq!(whole, pieces, "chunks of {chunk} filtered differently");
    let Ok(out) = whole else {
        return;
    };
    let docs: Vec<Value> = if content_type == "application/json" {
        serde_json::from_slice(&out).into_iter().collect()
    } else {
        sse_data(&out)
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    };
    for doc in &docs {
        for tool in offered(doc) {
            assert!(!refused(tool), "refused tool {tool:?} reached the agent");
        }
    }
});

/// The filter's whole output, or its error (the rest is then not sent).
fn filter(content_type: &str, body: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
    let mut f = tools_filter(
        Some(content_type),
        None,
        ToolsTarget::AnyToolsResult,
        Box::new(|name: &str| !refused(name)),
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(&f.push(piece).map_err(|e| e.to_string())?);
    }
    out.extend_from_slice(&f.finish().map_err(|e| e.to_string())?);
    Ok(out)
}

/// Tool names of every response's `result.tools`, as serde_json reads them.
fn offered(doc: &Value) -> Vec<&str> {
    match doc {
        Value::Array(items) => items.iter().flat_map(tools_of).collect(),
        v => tools_of(v),
    }
}

fn tools_of(response: &Value) -> Vec<&str> {
    response
        .get("result")
        .and_then(|r| r.get("tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The `data` of each event of a server-sent event stream (WHATWG: lines
/// end in CR, LF or CRLF; an empty line ends an event; `data:` lines join
/// with LF, one leading space dropped), decoded as an EventSource does:
/// bytes that are not UTF-8 become U+FFFD.
fn sse_data(stream: &[u8]) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let normalised = normalise_line_ends(stream);
    for line in normalised.split(|b| *b == b'\n') {
        if line.is_empty() {
            events.extend(
                data.take()
                    .map(|d| String::from_utf8_lossy(&d).into_owned()),
            );
            continue;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if field == b"data" {
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events
}

fn normalise_line_ends(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len());
    let mut bytes = stream.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' {
            bytes.next_if_eq(&&b'\n');
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    out
}
