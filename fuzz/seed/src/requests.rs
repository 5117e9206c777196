//! Requests from the shipped-route table the connector tests check
//! (`connectors/tests/route_cases`), written as the raw HTTP/1 bytes an
//! agent sends.
use std::collections::BTreeSet;

#[path = "../../../agent-userspace/crates/connectors/tests/route_cases/mod.rs"]
mod route_cases;

pub use route_cases::Case;

pub fn route_cases() -> Vec<Case> {
    route_cases::all_cases()
}

fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

pub fn raw_request(case: &Case) -> Vec<u8> {
    let (host, target) = split_url(case.url);
    let mut out = format!("{} {target} HTTP/1.1\r\nHost: {host}\r\n", case.method);
    for (name, value) in case.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = match case.body {
        Some((content_type, body)) => {
            out.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
            body
        }
        None => "",
    };
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

pub fn hosts(cases: &[Case]) -> Vec<String> {
    let set: BTreeSet<String> = cases
        .iter()
        .map(|c| split_url(c.url).0.to_string())
        .collect();
    set.into_iter().collect()
}
