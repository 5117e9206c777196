//! SigV4's URI and query canonicalisation.
//!
//! The rules follow what AWS's servers and the reference signer (botocore)
//! compute, since a request must verify as the agent's SDK signed it and
//! then verify upstream after re-signing:
//!
//! - the canonical URI of an S3 request is the path exactly as sent;
//!   every other service normalises dot segments and percent-encodes the
//!   sent (already encoded) path once more, keeping `/` and `~`;
//! - the canonical query decodes each name and value and re-encodes them
//!   with only the unreserved characters left bare, sorted by name then
//!   value.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// RFC 3986 unreserved characters stay; everything else is `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`UNRESERVED`], and `/` too (paths).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// One name or value of the canonical query (and of presigned URLs).
pub(crate) fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The canonical URI of `path` (as sent, without the query) for `service`.
pub(crate) fn canonical_uri(service: &str, path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    if service == "s3" {
        return path.to_string();
    }
    let normalized = remove_dot_segments(path);
    utf8_percent_encode(&normalized, PATH).to_string()
}

/// RFC 3986 5.2.4, as Python's `posixpath.normpath`-based normaliser
/// botocore uses: `.` and `..` resolved, a trailing slash kept.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for seg in &segments {
        match *seg {
            "." | "" => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut joined = format!("/{}", out.join("/"));
    if path.ends_with('/') && joined != "/" {
        joined.push('/');
    }
    joined
}

/// The canonical query string of `query` (as sent), leaving out any
/// parameter named in `skip` (the signature itself, for presigned URLs).
pub(crate) fn canonical_query(query: Option<&str>, skip: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .map(|(n, v)| (encode_component(&n), encode_component(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decodes one query component. `+` stays a plus: SigV4 clients
/// encode a space as `%20`.
pub(crate) fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Every `(name, value)` of a query, decoded, in order.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_paths_are_taken_as_sent() {
        assert_eq!(
            canonical_uri("s3", "/bucket/a%20b/./c"),
            "/bucket/a%20b/./c"
        );
    }

    #[test]
    fn other_services_normalise_and_encode_again() {
        assert_eq!(
            canonical_uri("bedrock", "/model/anthropic.claude-v2%3A1/invoke"),
            "/model/anthropic.claude-v2%253A1/invoke"
        );
        assert_eq!(canonical_uri("sts", ""), "/");
        assert_eq!(canonical_uri("sts", "/a/./b/../c/"), "/a/c/");
        assert_eq!(canonical_uri("sts", "/.."), "/");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query(Some("b=2&a=x%20y&a=1&list-type=2&prefix="), &[]),
            "a=1&a=x%20y&b=2&list-type=2&prefix="
        );
        assert_eq!(canonical_query(Some("acl"), &[]), "acl=");
        assert_eq!(
            canonical_query(Some("X-Amz-Signature=ab&k=v%2Fw"), &["X-Amz-Signature"]),
            "k=v%2Fw"
        );
        assert_eq!(canonical_query(None, &[]), "");
    }
}
