//! Shared helpers: load the shipped connectors and run a request through them.
#![allow(dead_code)]

use cordon_connectors::{Action, ConnectorSet, RequestHead};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::path::PathBuf;

pub fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../policies/connectors")
}

pub fn shipped() -> ConnectorSet {
    ConnectorSet::load_dir(&shipped_dir()).expect("shipped connectors load")
}

pub fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// Run `method url` with an optional `(content type, body)` through both matching steps.
pub fn act(
    set: &ConnectorSet,
    method: &str,
    url: &str,
    hdrs: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Action {
    let uri: Uri = url.parse().unwrap();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let headers = headers(hdrs);
    let head = RequestHead {
        method: &method,
        host: uri.host().unwrap(),
        port: uri.port_u16().unwrap_or(443),
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
    };
    let m = set.match_head(&head);
    match body {
        Some((ct, bytes)) => m.complete(bytes, Some(ct)),
        None => m.into_action(),
    }
}
