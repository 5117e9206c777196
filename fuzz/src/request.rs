//! A fuzz input read as an agent's HTTP/1 request: a head httparse accepts,
//! then the body (everything after the head).
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// The most headers a fuzzed head may carry (the proxy's own bound is 100).
const MAX_HEADERS: usize = 100;

pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// From `Host`, without a port; empty when there is none.
    pub host: String,
    pub port: u16,
    pub headers: HeaderMap,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// `None` when the bytes are not a complete, valid request head (the
    /// proxy would answer 400 before any connector sees it).
    pub fn parse(data: &'a [u8]) -> Option<Request<'a>> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        let httparse::Status::Complete(head_len) = req.parse(data).ok()? else {
            return None;
        };
        let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
        let target = req.path?;
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut headers = HeaderMap::new();
        for h in req.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(h.value).ok()?;
            headers.append(name, value);
        }
        let authority = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let (host, port) = authority
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .unwrap_or((authority, 443));
        let host = host.to_string();
        Some(Request {
            method,
            path,
            query,
            host,
            port,
            headers,
            body: &data[head_len..],
        })
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }
}
