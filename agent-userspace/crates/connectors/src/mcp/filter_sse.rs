//! Filtering `tools/list` results in a server-sent-events stream. Each event is released as
//! soon as its closing blank line arrives, byte for byte as received, except an event whose
//! data is a targeted `tools/list` result: that one is released with its data rewritten. The
//! stream is never held beyond the event being read.

use super::sse::{Scan, content, data, data_value, event_end, lines};
use super::tools_list::{KeepTool, ToolsTarget, rewrite, targets_any, unfilterable};
use super::{FilterError, ToolsFilter};
use bytes::Bytes;
use serde_json::Value;

/// Largest single event held while it is incomplete; a longer one ends the stream.
pub const MAX_SSE_EVENT: usize = 8 * 1024 * 1024;

/// See the module docs.
pub struct SseToolsFilter<'a> {
    target: ToolsTarget,
    keep: Box<KeepTool<'a>>,
    pending: Vec<u8>,
    scan: Scan,
    removed: Vec<String>,
}

impl<'a> SseToolsFilter<'a> {
    pub fn new(target: ToolsTarget, keep: Box<KeepTool<'a>>) -> Self {
        Self {
            target,
            keep,
            pending: Vec::new(),
            scan: Scan::default(),
            removed: Vec::new(),
        }
    }

    /// The event as it should leave the proxy.
    fn event(&mut self, raw: Vec<u8>) -> Vec<u8> {
        let Some(data) = data(&raw) else {
            return raw;
        };
        // Data that is not UTF-8 is what a client decodes lossily (U+FFFD for each bad byte)
        // and then reads: judge that text, or a list hidden behind one bad byte would pass
        // (fuzz finding, mcp_tools_filter).
        let data = match std::str::from_utf8(&data) {
            Ok(_) => data,
            Err(_) => String::from_utf8_lossy(&data).into_owned().into_bytes(),
        };
        // Most events are not answers at all; skip parsing them. A key spelled with escapes
        // (`\u0072esult`) still has to be parsed.
        if !contains(&data, b"result") && !contains(&data, b"\\u") {
            return raw;
        }
        let mut doc = match super::strict_json::parse(&data) {
            Ok(doc) => doc,
            Err(_) => match serde_json::from_slice::<Value>(&data) {
                // Readable only leniently (a repeated key): a client could read a list from
                // it that the filter did not see, so a targeted one is withheld.
                Ok(lenient) if targets_any(&lenient, &self.target) => {
                    return with_data(&raw, &unfilterable(self.target.first_id()));
                }
                _ => return raw,
            },
        };
        if rewrite(&mut doc, &self.target, &mut *self.keep, &mut self.removed) {
            with_data(&raw, &doc)
        } else {
            raw
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw event with its data lines replaced by one line carrying `doc`.
fn with_data(raw: &[u8], doc: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut written = false;
    for line in lines(raw) {
        if data_value(line).is_some() {
            if !written {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(doc.to_string().as_bytes());
                // Keep the stream's own line ending.
                out.extend_from_slice(&line[content(line).len()..]);
                written = true;
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

impl ToolsFilter for SseToolsFilter<'_> {
    fn push(&mut self, chunk: &[u8]) -> Result<Bytes, FilterError> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        // Events are cut from `start` on and the buffer is shifted once at the end, so a chunk
        // holding many small events costs time linear in its length.
        let mut start = 0;
        while let Some(end) = event_end(&self.pending[start..], &mut self.scan) {
            let raw = self.pending[start..start + end].to_vec();
            start += end;
            self.scan = Scan::default();
            out.extend_from_slice(&self.event(raw));
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_SSE_EVENT {
            return Err(FilterError::EventTooLarge);
        }
        Ok(Bytes::from(out))
    }

    /// An event the stream ended inside is never dispatched by an SSE client, so it is
    /// dropped rather than released unfiltered.
    fn finish(&mut self) -> Result<Bytes, FilterError> {
        self.pending.clear();
        Ok(Bytes::new())
    }

    fn removed(&self) -> &[String] {
        &self.removed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tools_list_behind_a_byte_that_is_not_utf8_is_still_filtered() {
        let mut f = SseToolsFilter::new(
            ToolsTarget::AnyToolsResult,
            Box::new(|tool: &str| tool != "delete_repository"),
        );
        let ev = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"search\",\"description\":\"\xff\"},{\"name\":\"delete_repository\"}]}}\n\n".to_vec();
        let out = f.push(&ev).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("delete_repository"), "{text}");
        assert!(text.contains("search"), "{text}");
    }

    use super::*;
    use serde_json::json;

    fn filter(target: ToolsTarget) -> SseToolsFilter<'static> {
        SseToolsFilter::new(target, Box::new(|name: &str| name != "delete_repository"))
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search_issues"},{"name":"delete_repository"}]}}"#;

    #[test]
    fn other_events_pass_unchanged_as_soon_as_they_end() {
        let mut f = filter(ToolsTarget::Ids(vec![json!(1)]));
        let note = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n";
        assert_eq!(&f.push(note).unwrap()[..], &note[..]);
        assert_eq!(&f.push(b": keepalive\n\n").unwrap()[..], b": keepalive\n\n");
        // Half an event is held, not released, until its end arrives.
        assert!(f.push(b"data: {\"jsonrpc\":\"2.0\",").unwrap().is_empty());
        assert_eq!(
            &f.push(b"\"id\":9,\"result\":{}}\n\n").unwrap()[..],
            b"data: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n\n"
        );
    }

    #[test]
    fn the_tools_list_event_is_rewritten_in_place() {
        let mut f = filter(ToolsTarget::Ids(vec![json!(1)]));
        let stream = format!("id: e1\r\nevent: message\r\ndata: {LIST}\r\n\r\n");
        let mut out = Vec::new();
        // Byte by byte: the parser must not depend on how the stream is chunked.
        for b in stream.as_bytes() {
            out.extend_from_slice(&f.push(&[*b]).unwrap());
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("id: e1\r\nevent: message\r\ndata: "),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let doc: Value = serde_json::from_str(data).unwrap();
        assert_eq!(doc["result"]["tools"], json!([{"name":"search_issues"}]));
        assert_eq!(f.removed(), ["delete_repository"]);
    }

    #[test]
    fn many_events_in_one_chunk_are_released_in_linear_time() {
        let mut f = filter(ToolsTarget::AnyToolsResult);
        let stream =
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n".repeat(100_000);
        let started = std::time::Instant::now();
        let out = f.push(stream.as_bytes()).unwrap();
        assert_eq!(out.len(), stream.len());
        // Quadratic shifting of a 6 MB buffer would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn one_long_event_in_small_chunks_is_scanned_once() {
        let mut f = filter(ToolsTarget::AnyToolsResult);
        let event = format!("data: \"{}\"\n\n", "x".repeat(4_000_000));
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        for chunk in event.as_bytes().chunks(1024) {
            out.extend_from_slice(&f.push(chunk).unwrap());
        }
        assert_eq!(out, event.as_bytes());
        // Rescanning the held line on every chunk would read ~8 GB.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_list_under_an_escaped_key_is_still_filtered() {
        let mut f = filter(ToolsTarget::Ids(vec![json!(1)]));
        let ev = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"\\u0072esult\":{\"tools\":[{\"name\":\"delete_repository\"}]}}\n\n";
        let out = String::from_utf8(f.push(ev.as_bytes()).unwrap().to_vec()).unwrap();
        assert!(!out.contains("delete_repository"), "{out}");
    }

    #[test]
    fn a_list_with_a_repeated_key_is_withheld() {
        let mut f = filter(ToolsTarget::AnyToolsResult);
        let ev = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[],\"tools\":[{\"name\":\"delete_repository\"}]}}\n\n";
        let out = String::from_utf8(f.push(ev.as_bytes()).unwrap().to_vec()).unwrap();
        assert!(out.contains("withheld"), "{out}");
        assert!(!out.contains("delete_repository"));
    }

    #[test]
    fn an_unfinished_event_is_dropped_and_a_huge_one_is_an_error() {
        let mut f = filter(ToolsTarget::AnyToolsResult);
        let cut = format!("data: {LIST}");
        assert!(f.push(cut.as_bytes()).unwrap().is_empty());
        assert!(f.finish().unwrap().is_empty());
        let mut f = filter(ToolsTarget::AnyToolsResult);
        let big = vec![b'x'; MAX_SSE_EVENT + 1];
        assert!(matches!(f.push(&big), Err(FilterError::EventTooLarge)));
    }
}
