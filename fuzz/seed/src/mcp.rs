//! MCP traffic recorded from the official SDK (the connector tests'
//! fixtures): request bodies, and answers as the tools filter reads them
//! (a first byte picks JSON or SSE and the chunk size).
use std::path::Path;

use serde_json::Value;

pub struct Traffic {
    pub requests: Vec<Vec<u8>>,
    pub answers: Vec<Vec<u8>>,
}

pub fn traffic(fixtures: &Path) -> Traffic {
    let mut t = Traffic {
        requests: Vec::new(),
        answers: Vec::new(),
    };
    let Ok(entries) = std::fs::read_dir(fixtures) else {
        return t;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        for x in doc["exchanges"].as_array().into_iter().flatten() {
            if let Some(body) = x["body"].as_str().filter(|b| !b.is_empty()) {
                t.requests.push(body.as_bytes().to_vec());
            }
            if let Some(answer) = x["response_body"].as_str().filter(|b| !b.is_empty()) {
                let sse = x["response_headers"]["content-type"]
                    .as_str()
                    .is_some_and(|ct| ct.starts_with("text/event-stream"));
                let mut seed = vec![(7 << 1) | u8::from(sse)];
                seed.extend_from_slice(answer.as_bytes());
                t.answers.push(seed);
            }
        }
    }
    t
}
