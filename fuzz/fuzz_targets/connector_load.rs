//! The connector loader (`ConnectorSet::from_sources`): TOML parsing, the
//! checks on every field, and compiling routes, templates, params, hosts,
//! credentials and pricing. A connector file is operator input, but a
//! loader that panics on a typo takes the daemon's reload down with it.
//!
//! Checks: it never panics; an error names the file and a line and column
//! inside it; a set that loads can match requests to every host it serves.
#![no_main]

use std::path::PathBuf;

use cordon_connectors::{ConnectorError, RequestHead};
use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzzed.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let set = match cordon_connectors::ConnectorSet::from_sources([(
        PathBuf::from(FILE),
        text.to_string(),
    )]) {
        Ok(set) => set,
        Err(ConnectorError::Invalid {
            file, line, column, ..
        }) => {
            assert_eq!(file, PathBuf::from(FILE));
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            assert!(column >= 1, "column {column}");
            return;
        }
        Err(other) => panic!("reading from memory failed as I/O: {other}"),
    };
    let headers = HeaderMap::new();
    for connector in set.connectors() {
        for host in connector.hosts() {
            let host = host.trim_start_matches("*.");
            for (method, path) in [
                (Method::GET, "/"),
                (Method::POST, "/repos/o/r/pulls/1/merge"),
                (Method::DELETE, "/a/b/c"),
            ] {
                let head = RequestHead {
                    method: &method,
                    host,
                    port: 443,
                    path,
                    query: Some("a=1"),
                    headers: &headers,
                };
                let action = set.match_head(&head).complete(br#"{"a":1}"#, None);
                assert!(!action.name.is_empty());
            }
        }
    }
});
