//! Helpers shared by the integration tests: policy directories written to
//! a temporary folder, and requests built from JSON.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use cordon_policy::{ActionRequest, Decision, PolicySet, Verdict};
use serde_json::{Map, Value};
use std::path::Path;
use tempfile::TempDir;

/// Writes `files` (relative path, content) into a fresh directory.
pub fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    dir
}

pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

pub fn set_with(files: &[(&str, &str)]) -> PolicySet {
    let dir = dir_with(files);
    PolicySet::load_dir(dir.path()).unwrap()
}

pub fn params(json: Value) -> Map<String, Value> {
    match json {
        Value::Object(map) => map,
        other => panic!("params must be an object, got {other}"),
    }
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn chain(agents: &[&str]) -> Vec<String> {
    agents.iter().map(|a| a.to_string()).collect()
}

/// A Monday noon in UTC, for tests that do not care about time.
pub const NOON: &str = "2025-01-06T12:00:00Z";

pub fn decide_at(set: &PolicySet, agents: &[&str], action: &str, p: Value, now: &str) -> Decision {
    let chain = chain(agents);
    let params = params(p);
    set.decide(&ActionRequest {
        chain: &chain,
        action,
        params: &params,
        request: None,
        now: at(now),
    })
}

pub fn decide(set: &PolicySet, agents: &[&str], action: &str, p: Value) -> Decision {
    decide_at(set, agents, action, p, NOON)
}

/// Short name of a verdict, for compact tables.
pub fn short(v: &Verdict) -> &'static str {
    v.name()
}
