//! Matching details: normalisation, hosts, enrichment, listing.

mod common;

use common::{act, shipped};
use serde_json::json;

#[test]
fn percent_encoding_in_a_segment_is_decoded_exactly_once() {
    let a = act(
        &shipped(),
        "GET",
        "https://api.github.com/repos/o/r/contents/a%2520b",
        &[],
        None,
    );
    assert_eq!(a.params["path"], json!("a%20b"));
}

#[test]
fn dot_segments_are_resolved_before_matching() {
    let a = act(
        &shipped(),
        "DELETE",
        "https://api.github.com/repos/o/r/git/refs/heads/x/../../../../../r2",
        &[],
        None,
    );
    assert_eq!(a.name, "github.repo.delete");
    assert_eq!(a.params["repo"], json!("r2"));
    let a = act(
        &shipped(),
        "DELETE",
        "https://api.github.com/repos/o/r/issues/%2e%2e",
        &[],
        None,
    );
    assert_eq!(a.name, "github.repo.delete");
    assert_eq!(a.params["repo"], json!("r"));
}

#[test]
fn hidden_dot_segments_behind_encoded_slashes_match_no_route() {
    let a = act(
        &shipped(),
        "DELETE",
        "https://api.github.com/repos/o/r/git/refs/heads/x%2F..%2F..%2Fy",
        &[],
        None,
    );
    assert_eq!(a.name, "http.request");
    assert_eq!(a.connector.as_deref(), Some("github"));
}

#[test]
fn hosts_match_case_insensitively_and_ignore_a_trailing_dot() {
    let a = act(
        &shipped(),
        "DELETE",
        "https://API.GitHub.com./repos/o/r",
        &[],
        None,
    );
    assert_eq!(a.name, "github.repo.delete");
}

#[test]
fn trailing_and_double_slashes_do_not_dodge_a_route() {
    let a = act(
        &shipped(),
        "DELETE",
        "https://api.github.com//repos/o//r/",
        &[],
        None,
    );
    assert_eq!(a.name, "github.repo.delete");
}

#[test]
fn git_service_must_be_unambiguous() {
    let a = act(
        &shipped(),
        "GET",
        "https://github.com/o/r/info/refs?service=git-upload-pack&service=git-receive-pack",
        &[],
        None,
    );
    assert_eq!(a.name, "http.request");
}

#[test]
fn pr_merge_asks_for_the_base_branch_and_applies_it() {
    let mut a = act(
        &shipped(),
        "PUT",
        "https://api.github.com/repos/my%20org/r/pulls/12/merge",
        &[],
        Some(("application/json", b"{}")),
    );
    assert_eq!(a.enrich.len(), 1);
    let spec = a.enrich[0].clone();
    assert_eq!(spec.param, "base");
    assert_eq!(spec.path, "/repos/my%20org/r/pulls/12");
    assert_eq!(spec.json_path, "base.ref");
    assert!(!a.params.contains_key("base"));
    a.apply_enrichment(&spec, br#"{"number": 12, "base": {"ref": "main"}}"#)
        .unwrap();
    assert_eq!(a.params["base"], json!("main"));
}

#[test]
fn glob_hosts_match_and_exact_hosts_win_over_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wild.toml"),
        "name = \"wild\"\nhosts = [\"*.example.com\"]\n[[route]]\nmethod = \"*\"\npath = \"/{rest...}\"\naction = \"wild.any\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("exact.toml"),
        "name = \"exact\"\nhosts = [\"api.example.com\"]\n[[route]]\nmethod = \"GET\"\npath = \"/v1\"\naction = \"exact.read\"\n",
    )
    .unwrap();
    let set = cordon_connectors::ConnectorSet::load_dir(dir.path()).unwrap();
    assert_eq!(
        act(&set, "GET", "https://a.b.example.com/x", &[], None).name,
        "wild.any"
    );
    assert_eq!(
        act(&set, "GET", "https://api.example.com/v1", &[], None).name,
        "exact.read"
    );
    // The exact connector has no route for this, so the next host match gets its turn.
    assert_eq!(
        act(&set, "POST", "https://api.example.com/v1", &[], None).name,
        "wild.any"
    );
    assert_eq!(
        set.connector_for_host("api.example.com").unwrap().name(),
        "exact"
    );
}

#[test]
fn list_reports_every_shipped_connector() {
    let list = shipped().list();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "anthropic",
            "aws-bedrock-runtime",
            "aws-dynamodb",
            "aws-s3",
            "aws-sts",
            "git",
            "github-mcp",
            "github",
            "openai",
            "slack",
            "stripe"
        ]
    );
    let gh = list.iter().find(|c| c.name == "github").unwrap();
    assert_eq!(gh.hosts, ["api.github.com", "github.com"]);
    assert!(gh.routes > 30);
    assert!(gh.has_credential && !gh.has_pricing);
}
