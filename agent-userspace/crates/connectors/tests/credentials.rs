//! Applying vault secrets per scheme, and recognising what the agent sent.

mod common;

use common::{headers, shipped};
use cordon_connectors::{CredentialError, Presented, placeholder_value};
use http::Uri;
use http::header::AUTHORIZATION;

const SECRET: &[u8] = b"s3cr3t-value-from-vault";

fn load(file: &str) -> cordon_connectors::ConnectorSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), file).unwrap();
    cordon_connectors::ConnectorSet::load_dir(dir.path()).unwrap()
}

#[test]
fn bearer_replaces_the_agents_authorization() {
    let set = shipped();
    let spec = set.connector("openai").unwrap().credential().unwrap();
    let mut h = headers(&[
        ("authorization", "Bearer cordon-placeholder-openai"),
        ("proxy-authorization", "x"),
    ]);
    let mut uri: Uri = "/v1/chat/completions".parse().unwrap();
    let spellings = spec.apply(&mut h, &mut uri, SECRET).unwrap();
    // "Bearer <secret>" carries the secret's own bytes: nothing else to look for.
    assert!(spellings.into_vec().is_empty());
    assert_eq!(h.get_all(AUTHORIZATION).iter().count(), 1);
    assert_eq!(h[AUTHORIZATION], "Bearer s3cr3t-value-from-vault");
    assert!(h[AUTHORIZATION].is_sensitive());
    assert!(!h.contains_key("proxy-authorization"));
    assert!(!format!("{h:?}").contains("s3cr3t"));
}

#[test]
fn github_uses_basic_with_a_fixed_user_for_git_on_github_com() {
    let set = shipped();
    let gh = set.connector("github").unwrap();
    let spec = gh.credential_for_host("github.com").unwrap();
    let mut h = headers(&[(
        "authorization",
        "Basic eDpjb3Jkb24tcGxhY2Vob2xkZXItZ2l0aHVi",
    )]);
    let mut uri: Uri = "/o/r.git/git-upload-pack".parse().unwrap();
    let spellings = spec.apply(&mut h, &mut uri, b"ghp_real").unwrap();
    // base64("x-access-token:ghp_real")
    assert_eq!(h[AUTHORIZATION], "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX3JlYWw=");
    // An echo of the header hands back the token in base64: that spelling is reported.
    let spellings: Vec<Vec<u8>> = spellings.into_vec().iter().map(|s| s.to_vec()).collect();
    assert_eq!(spellings, [b"eC1hY2Nlc3MtdG9rZW46Z2hwX3JlYWw=".to_vec()]);
    assert_eq!(gh.credential_for_host("api.github.com"), gh.credential());
    assert_eq!(gh.placeholder_env(), ["GITHUB_TOKEN", "GH_TOKEN"]);
    assert_eq!(gh.placeholder_value(), placeholder_value("github"));
}

#[test]
fn basic_without_username_needs_user_colon_password() {
    let set = load("name = \"b\"\nhosts = [\"b.test\"]\n[credential]\nscheme = \"basic\"\n");
    let spec = set.connector("b").unwrap().credential().unwrap();
    let (mut h, mut uri) = (headers(&[]), "/".parse::<Uri>().unwrap());
    assert!(matches!(
        spec.apply(&mut h, &mut uri, b"nocolon"),
        Err(CredentialError::BasicNeedsUserPassword)
    ));
    let spellings = spec.apply(&mut h, &mut uri, b"u:p4ss").unwrap();
    assert_eq!(h[AUTHORIZATION], "Basic dTpwNHNz");
    // The pair's base64, and the password alone (an echo of the decoded pair).
    let spellings: Vec<Vec<u8>> = spellings.into_vec().iter().map(|s| s.to_vec()).collect();
    assert_eq!(spellings, [b"p4ss".to_vec(), b"dTpwNHNz".to_vec()]);
}

#[test]
fn header_scheme_replaces_the_custom_header_and_drops_authorization() {
    let set = shipped();
    let spec = set.connector("anthropic").unwrap().credential().unwrap();
    let mut h = headers(&[
        ("x-api-key", "cordon-placeholder-anthropic"),
        ("x-api-key", "second"),
        ("authorization", "Bearer sk-ant-smuggled"),
        ("anthropic-version", "2023-06-01"),
    ]);
    let mut uri: Uri = "/v1/messages".parse().unwrap();
    let spellings = spec.apply(&mut h, &mut uri, SECRET).unwrap();
    assert!(
        spellings.into_vec().is_empty(),
        "the header carries the secret as it is"
    );
    let keys: Vec<_> = h.get_all("x-api-key").iter().collect();
    assert_eq!(keys, [SECRET]);
    assert!(!h.contains_key(AUTHORIZATION));
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert!(matches!(
        spec.apply(&mut h, &mut uri, b"bad\r\nvalue"),
        Err(CredentialError::InvalidHeaderValue)
    ));
}

#[test]
fn query_scheme_replaces_the_param_and_keeps_the_rest_verbatim() {
    let set = load(
        "name = \"q\"\nhosts = [\"q.test\"]\n[credential]\nscheme = \"query\"\nparam = \"key\"\n",
    );
    let spec = set.connector("q").unwrap().credential().unwrap();
    let mut h = headers(&[("authorization", "Bearer x")]);
    let mut uri: Uri = "https://q.test/v1/x?a=1%202&key=cordon-placeholder-q&b=%2F&ke%79=again"
        .parse()
        .unwrap();
    let spellings = spec.apply(&mut h, &mut uri, b"s&=/").unwrap();
    assert_eq!(
        uri.to_string(),
        "https://q.test/v1/x?a=1%202&b=%2F&key=s%26%3D%2F"
    );
    // An echo of the URL carries the encoded value.
    let spellings: Vec<Vec<u8>> = spellings.into_vec().iter().map(|s| s.to_vec()).collect();
    assert_eq!(spellings, [b"s%26%3D%2F".to_vec()]);
    // A value that needs no encoding has no other spelling.
    let mut uri: Uri = "https://q.test/v1/x".parse().unwrap();
    assert!(
        spec.apply(&mut h, &mut uri, b"plainKey123")
            .unwrap()
            .into_vec()
            .is_empty()
    );
    assert!(!h.contains_key(AUTHORIZATION));
}

#[test]
fn inspect_tells_placeholder_foreign_and_absent_apart() {
    let set = shipped();
    let spec = set.connector("github").unwrap().credential().unwrap();
    let uri: Uri = "/".parse().unwrap();
    assert_eq!(spec.inspect(&headers(&[]), &uri), Presented::Absent);
    assert_eq!(
        spec.inspect(
            &headers(&[("authorization", "token cordon-placeholder-github")]),
            &uri
        ),
        Presented::Placeholder {
            connector: "github".into()
        }
    );
    assert_eq!(
        spec.inspect(
            &headers(&[("authorization", "Bearer ghp_0123456789abcdef")]),
            &uri
        ),
        Presented::Foreign
    );
    assert_eq!(
        spec.inspect(&headers(&[("authorization", "Bearer short")]), &uri),
        Presented::Unrecognised
    );
    // A real key next to a placeholder is still a real key.
    assert_eq!(
        spec.inspect(
            &headers(&[
                ("authorization", "Bearer cordon-placeholder-github"),
                ("authorization", "Bearer xoxb-1-2")
            ]),
            &uri
        ),
        Presented::Foreign
    );
}

#[test]
fn credential_debug_output_carries_no_secret() {
    let err = CredentialError::InvalidHeaderValue;
    assert!(!format!("{err:?}").contains("s3cr3t"));
    let set = shipped();
    let spec = set.connector("stripe").unwrap().credential().unwrap();
    assert!(format!("{spec:?}").contains("Bearer"));
}
