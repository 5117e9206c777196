//! Turning a raw request path into the segments a server acts on.
//!
//! Matching must describe the resource the upstream will touch, so the path is normalised the
//! way servers commonly do it: every segment is percent-decoded exactly once, empty segments
//! (`//`, trailing `/`) are dropped and `.` / `..` segments are resolved. A path that cannot be
//! interpreted unambiguously yields `None`, so it matches no route.

use percent_encoding::percent_decode_str;

/// Decoded, normalised path segments, or `None` when the path is not interpretable.
pub(crate) fn normalize(raw: &str) -> Option<Vec<String>> {
    let rest = raw.strip_prefix('/')?;
    let mut out: Vec<String> = Vec::new();
    for raw_seg in rest.split('/') {
        let seg = percent_decode_str(raw_seg).decode_utf8().ok()?.into_owned();
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => {
                // An encoded '/' keeps the segment whole, but if a server decoded it before
                // routing, hidden dot-segments would move the request elsewhere.
                if seg.contains('/') && seg.split('/').any(|p| p == "." || p == "..") {
                    return None;
                }
                out.push(seg);
            }
        }
    }
    Some(out)
}

/// The normalised path as one string, for `http.request` and git params.
pub(crate) fn join(segments: &[String]) -> String {
    let mut s = String::with_capacity(segments.iter().map(|p| p.len() + 1).sum::<usize>() + 1);
    if segments.is_empty() {
        s.push('/');
    }
    for seg in segments {
        s.push('/');
        s.push_str(seg);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_segment_once() {
        assert_eq!(normalize("/a%2520b/c%2Fd").unwrap(), vec!["a%20b", "c/d"]);
    }

    #[test]
    fn resolves_dot_segments_and_empty_segments() {
        assert_eq!(normalize("/a//b/./c/../d/").unwrap(), vec!["a", "b", "d"]);
        assert_eq!(normalize("/%2e%2e/x").unwrap(), vec!["x"]);
    }

    #[test]
    fn rejects_hidden_dot_segments_and_bad_utf8() {
        assert!(normalize("/a%2F..%2Fb").is_none());
        assert!(normalize("/%ff").is_none());
        assert!(normalize("relative").is_none());
    }
}
