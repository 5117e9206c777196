//! Reading params out of a request body prefix: JSON, url-encoded forms, multipart forms.

use crate::json_prefix::{self, Node};

/// The parsed body prefix, in the one format the upstream will read it as.
#[derive(Debug)]
pub(crate) enum Body {
    Json(Node),
    /// Fields in order; only fields known to be complete.
    Form(Vec<(String, String)>),
    /// Not a format we read params from (or unparsable): body params stay absent.
    Opaque,
}

impl Body {
    /// `truncated` says the caller may have cut the body at the prefix end.
    pub(crate) fn parse(prefix: &[u8], content_type: Option<&str>, truncated: bool) -> Body {
        let kind = match content_type {
            Some(ct) => media_kind(ct),
            // Without a content type, look at the data the way lenient servers do.
            None => match prefix.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{' | b'[') => Kind::Json,
                _ => Kind::Form,
            },
        };
        // A body longer than the limit cannot be read as a whole: a key
        // may come again after the cut, and servers that take the last
        // occurrence would act on a value policy never saw (`amount=500&…
        // 64 KiB …&amount=500000`). So none of its keyed params are trusted:
        // they stay absent, and conditions on them fail closed. Operators
        // whose requests are larger raise the body limit.
        if truncated {
            return Body::Opaque;
        }
        match kind {
            Kind::Json => json_prefix::parse(prefix).map_or(Body::Opaque, Body::Json),
            Kind::Form => Body::Form(urlencoded(prefix)),
            Kind::Multipart(boundary) => Body::Form(multipart(prefix, &boundary)),
            Kind::Other => Body::Opaque,
        }
    }
}

enum Kind {
    Json,
    Form,
    Multipart(String),
    Other,
}

fn media_kind(content_type: &str) -> Kind {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        Kind::Json
    } else if media == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if media == "multipart/form-data" {
        parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| unquote(v.trim()).to_string())
            .filter(|b| !b.is_empty())
            .map_or(Kind::Other, Kind::Multipart)
    } else {
        Kind::Other
    }
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

fn urlencoded(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Text fields of a multipart body; parts without a closing delimiter are cut and dropped.
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let delim = delimiter.as_bytes();
    let mut fields = Vec::new();
    let Some(first) = find(body, delim) else {
        return fields;
    };
    let mut pos = first + delim.len();
    loop {
        // After a delimiter: "--" ends the body, otherwise CRLF starts a part.
        let rest = &body[pos..];
        if rest.starts_with(b"--") || !rest.starts_with(b"\r\n") {
            return fields;
        }
        let part_start = pos + 2;
        let Some(head_len) = find(&body[part_start..], b"\r\n\r\n") else {
            return fields;
        };
        let headers = &body[part_start..part_start + head_len];
        let content_start = part_start + head_len + 4;
        let closing = [b"\r\n", delim].concat();
        let Some(content_len) = find(&body[content_start..], &closing) else {
            return fields;
        };
        let content = &body[content_start..content_start + content_len];
        if let Some(name) = text_field_name(headers)
            && let Ok(value) = std::str::from_utf8(content)
        {
            fields.push((name, value.to_string()));
        }
        pos = content_start + content_len + closing.len();
    }
}

/// The `name` of a part that is a plain field (file parts carry a `filename`).
fn text_field_name(headers: &[u8]) -> Option<String> {
    let headers = std::str::from_utf8(headers).ok()?;
    let disposition = headers.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    let mut name = None;
    for param in disposition.split(';').skip(1) {
        let (k, v) = param.split_once('=')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(unquote(v.trim()).to_string()),
            "filename" | "filename*" => return None,
            _ => {}
        }
    }
    name
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &Body) -> Vec<(String, String)> {
        match body {
            Body::Form(f) => f.clone(),
            other => panic!("expected form, got {other:?}"),
        }
    }

    #[test]
    fn a_body_cut_at_the_limit_gives_no_keyed_params() {
        // `amount` may come again after the cut, where policy cannot see it.
        for (body, ctype) in [
            (&b"currency=usd&amount=50"[..], None),
            (
                br#"{"amount": 50, "currency": "usd""#,
                Some("application/json"),
            ),
        ] {
            assert!(matches!(Body::parse(body, ctype, true), Body::Opaque));
        }
        let b = Body::parse(b"currency=usd&amount=50", None, false);
        assert_eq!(form(&b).len(), 2);
    }

    #[test]
    fn multipart_reads_text_fields_and_skips_files_and_cut_parts() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC123\r\n\
--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n\
--XX\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nunfinished";
        let b = Body::parse(body, Some("multipart/form-data; boundary=\"XX\""), false);
        assert_eq!(form(&b), vec![("channels".into(), "C123".into())]);
    }

    #[test]
    fn unknown_media_types_are_opaque() {
        assert!(matches!(
            Body::parse(b"amount=5", Some("text/plain"), false),
            Body::Opaque
        ));
        assert!(matches!(
            Body::parse(
                b"{\"a\":1}",
                Some("application/vnd.api+json; charset=utf-8"),
                false
            ),
            Body::Json(_)
        ));
    }
}
