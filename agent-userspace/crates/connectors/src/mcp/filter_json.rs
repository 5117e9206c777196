//! Filtering a `tools/list` answer sent as one `application/json` body. The document must be
//! whole to be rewritten, so this filter holds the body (up to a bound) and releases the
//! rewritten one at the end.

use super::tools_list::{KeepTool, ToolsTarget, rewrite, unfilterable};
use super::{FilterError, ToolsFilter};
use bytes::Bytes;

/// Largest JSON answer held for filtering; a longer one is replaced by an error.
pub const MAX_JSON_RESPONSE: usize = 4 * 1024 * 1024;

/// See the module docs.
pub struct JsonToolsFilter<'a> {
    target: ToolsTarget,
    keep: Box<KeepTool<'a>>,
    body: Vec<u8>,
    overflow: bool,
    removed: Vec<String>,
}

impl<'a> JsonToolsFilter<'a> {
    pub fn new(target: ToolsTarget, keep: Box<KeepTool<'a>>) -> Self {
        Self {
            target,
            keep,
            body: Vec::new(),
            overflow: false,
            removed: Vec::new(),
        }
    }

    fn filtered(&mut self) -> Vec<u8> {
        if self.overflow {
            return unfilterable(self.target.first_id())
                .to_string()
                .into_bytes();
        }
        let mut doc = match super::strict_json::parse(&self.body) {
            Ok(doc) => doc,
            Err(_) => {
                return unfilterable(self.target.first_id())
                    .to_string()
                    .into_bytes();
            }
        };
        if rewrite(&mut doc, &self.target, &mut *self.keep, &mut self.removed) {
            doc.to_string().into_bytes()
        } else {
            std::mem::take(&mut self.body)
        }
    }
}

impl ToolsFilter for JsonToolsFilter<'_> {
    fn push(&mut self, chunk: &[u8]) -> Result<Bytes, FilterError> {
        if self.body.len() + chunk.len() > MAX_JSON_RESPONSE {
            self.overflow = true;
            self.body = Vec::new();
        } else if !self.overflow {
            self.body.extend_from_slice(chunk);
        }
        Ok(Bytes::new())
    }

    fn finish(&mut self) -> Result<Bytes, FilterError> {
        Ok(Bytes::from(self.filtered()))
    }

    fn removed(&self) -> &[String] {
        &self.removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn filter() -> JsonToolsFilter<'static> {
        JsonToolsFilter::new(
            ToolsTarget::Ids(vec![json!(1)]),
            Box::new(|name: &str| name.starts_with("search")),
        )
    }

    #[test]
    fn the_body_is_held_and_released_filtered_at_the_end() {
        let mut f = filter();
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search_issues"},{"name":"delete_repository"}]}}"#;
        assert!(f.push(&body[..20]).unwrap().is_empty());
        assert!(f.push(&body[20..]).unwrap().is_empty());
        let out: Value = serde_json::from_slice(&f.finish().unwrap()).unwrap();
        assert_eq!(out["result"]["tools"], json!([{"name":"search_issues"}]));
        assert_eq!(f.removed(), ["delete_repository"]);
    }

    #[test]
    fn an_unchanged_body_is_returned_byte_for_byte() {
        let mut f = filter();
        let body =
            b"{ \"jsonrpc\":\"2.0\", \"id\":1, \"result\":{\"tools\":[{\"name\":\"search\"}]} }";
        f.push(body).unwrap();
        assert_eq!(&f.finish().unwrap()[..], &body[..]);
    }

    #[test]
    fn unreadable_or_oversized_bodies_become_an_error_not_the_full_list() {
        let mut f = filter();
        f.push(b"{\"jsonrpc\":").unwrap();
        let out: Value = serde_json::from_slice(&f.finish().unwrap()).unwrap();
        assert_eq!(out["id"], json!(1));
        assert!(out.get("error").is_some());
        let mut f = filter();
        f.push(&vec![b' '; MAX_JSON_RESPONSE + 1]).unwrap();
        let out: Value = serde_json::from_slice(&f.finish().unwrap()).unwrap();
        assert!(out.get("error").is_some());
    }
}
