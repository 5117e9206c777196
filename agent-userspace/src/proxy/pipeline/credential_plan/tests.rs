//! The credential stage over a real policy directory and connector file,
//! without sockets or a daemon.
use std::sync::Arc;

use cordon_connectors::ConnectorSet;
use cordon_policy::PolicySet;
use http::{HeaderMap, HeaderValue, Uri, header};
use serde_json::{Map, Value, json};

use super::*;

const CONNECTOR: &str = r#"
name = "github"
hosts = ["api.github.com"]
[credential]
scheme = "bearer"
placeholder_env = ["GITHUB_TOKEN"]
"#;

const POLICY: &str = r#"
agents = ["bot"]
default = "allow"

[[credentials.github]]
entry = "gh-write"
when = 'action == "github.pr.merge" && params.owner == "acme"'

[[credentials.github]]
entry = "gh-read"
when = 'action.endsWith(".read")'
"#;

fn pinned() -> Pinned {
    Pinned::from_texts(POLICY, "github", CONNECTOR)
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn entry(p: &Pinned, agent: &str, action: &str, v: Value) -> Option<String> {
    choose(
        p,
        agent,
        Some("github"),
        "api.github.com",
        action,
        &params(v),
    )
    .map(|c| c.entry)
}

#[test]
fn the_first_binding_whose_when_holds_names_the_entry() {
    let p = pinned();
    let merge = json!({"owner": "acme"});
    assert_eq!(
        entry(&p, "bot", "github.pr.merge", merge).as_deref(),
        Some("gh-write")
    );
    assert_eq!(
        entry(&p, "bot", "github.issue.read", json!({})).as_deref(),
        Some("gh-read")
    );
}

#[test]
fn no_binding_that_holds_means_no_credential() {
    let p = pinned();
    assert_eq!(
        entry(&p, "bot", "github.pr.merge", json!({"owner": "evil"})),
        None
    );
    assert_eq!(entry(&p, "bot", "github.branch.delete", json!({})), None);
}

#[test]
fn an_agent_without_bindings_and_a_request_without_a_connector_get_nothing() {
    let p = pinned();
    assert_eq!(entry(&p, "other", "github.issue.read", json!({})), None);
    let none = choose(
        &p,
        "bot",
        None,
        "api.github.com",
        "http.request",
        &Map::new(),
    );
    assert!(none.is_none());
}

#[test]
fn a_credential_cordon_did_not_issue_is_refused_or_stripped_as_configured() {
    let p = pinned();
    let uri: Uri = "https://api.github.com/user".parse().unwrap();
    let mut real = HeaderMap::new();
    real.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
    );
    let host = "api.github.com";
    let c = Some("github");
    use ForeignCredentials as F;
    assert_eq!(
        presence(&p, c, host, &real, &uri, F::default()),
        Presence::Refuse
    );
    assert_eq!(
        presence(&p, c, host, &real, &uri, F::Strip),
        Presence::Strip(&cordon_connectors::CredentialScheme::Bearer)
    );
    assert_eq!(
        presence(&p, c, host, &HeaderMap::new(), &uri, F::default()),
        Presence::Clean
    );
}

#[test]
fn an_aws_connector_is_bound_without_a_scheme_and_other_connectors_need_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bot.toml"),
        "agents = [\"bot\"]\ndefault = \"allow\"\n[credentials]\naws-s3 = \"aws-role-entry\"\nplain = \"tok\"\n",
    )
    .unwrap();
    let policy = PolicySet::load_dir(dir.path()).unwrap();
    let connectors = ConnectorSet::from_sources(vec![
        (
            "aws-s3.toml".into(),
            "name = \"aws-s3\"\nhosts = [\"s3.amazonaws.com\"]\n".to_string(),
        ),
        (
            "plain.toml".into(),
            "name = \"plain\"\nhosts = [\"plain.test\"]\n".to_string(),
        ),
    ])
    .unwrap();
    let p = Pinned::new(Some(Arc::new(policy)), Arc::new(connectors));
    let none = Map::new();
    let aws = choose(
        &p,
        "bot",
        Some("aws-s3"),
        "s3.amazonaws.com",
        "aws.s3.get_object",
        &none,
    )
    .expect("the aws-role binding is chosen");
    assert_eq!(aws.entry, "aws-role-entry");
    assert!(aws.spec.is_none(), "re-signed, not injected");
    assert!(
        choose(
            &p,
            "bot",
            Some("plain"),
            "plain.test",
            "http.request",
            &none
        )
        .is_none()
    );
}
