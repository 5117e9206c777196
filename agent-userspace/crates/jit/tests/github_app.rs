//! GitHub App installation tokens against a local HTTPS GitHub that
//! verifies the app JWT with the app's public key and enforces scopes.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use common::github::{APP_ID, FakeGithub, INSTALLATION_ID};
use cordon_jit::InstanceId;
use cordon_jit::github::api::GithubApi;
use cordon_jit::github::error::GithubError;
use cordon_jit::github::scope::TokenScope;
use cordon_jit::github::tokens::GithubTokens;

/// The connector the tokens are minted for.
const GH: &str = "github";
use cordon_jit::https::HttpClient;
use cordon_vault::GithubAppEntry;
use rcgen::{KeyPair, PKCS_RSA_SHA256};

struct App {
    github: FakeGithub,
    tokens: GithubTokens,
    client: HttpClient,
    entry: GithubAppEntry,
}

fn rsa_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_RSA_SHA256).expect("RSA key")
}

/// GitHub hands out PKCS#1 (`BEGIN RSA PRIVATE KEY`); rcgen writes
/// PKCS#8. The PKCS#1 key is the OCTET STRING inside PrivateKeyInfo.
fn pkcs1_pem(key: &KeyPair) -> String {
    let der = key.serialize_der();
    fn read_len(d: &[u8], at: &mut usize) -> usize {
        let first = d[*at];
        *at += 1;
        if first < 0x80 {
            return first as usize;
        }
        let n = (first & 0x7f) as usize;
        let mut len = 0;
        for _ in 0..n {
            len = (len << 8) | d[*at] as usize;
            *at += 1;
        }
        len
    }
    let mut at = 1; // SEQUENCE
    read_len(&der, &mut at);
    for _ in 0..2 {
        // version INTEGER, then the AlgorithmIdentifier SEQUENCE
        at += 1;
        let l = read_len(&der, &mut at);
        at += l;
    }
    assert_eq!(der[at], 0x04, "PrivateKeyInfo's key is an OCTET STRING");
    at += 1;
    let l = read_len(&der, &mut at);
    let body = base64::engine::general_purpose::STANDARD.encode(&der[at..at + l]);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64"))
        .collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

async fn app() -> App {
    let key = rsa_key();
    let github = FakeGithub::start(key.public_key_raw().to_vec()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(github.ca.cert_der().clone()).expect("CA root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = HttpClient::new(&tls, Duration::from_secs(10));
    let api = GithubApi::new(client.clone(), &github.base_url()).expect("API base");
    let entry = GithubAppEntry {
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        private_key_pem: pkcs1_pem(&key),
    };
    entry.validate().expect("a valid github-app entry");
    App {
        tokens: GithubTokens::new(api),
        github,
        client,
        entry,
    }
}

impl App {
    /// What GitHub answers when the token reads `acme/<repo>`.
    async fn read_repo(&self, token: &str, repo: &str) -> u16 {
        let req = http::Request::get(format!("{}/repos/acme/{repo}", self.github.base_url()))
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        self.client
            .send(req)
            .await
            .expect("GitHub answers")
            .status
            .as_u16()
    }
}

fn perms(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A policy with two bindings, loaded and chosen from as the proxy does.
fn chosen_scope(action: &str, params: serde_json::Value) -> Option<TokenScope> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bot.toml"),
        r#"
agents = ["bot"]
default = "allow"

[[credentials.github]]
entry = "gh-app"
when = 'action == "github.pr.merge" && params.owner == "acme"'
repositories = ["acme/api"]
permissions = { contents = "write", pull_requests = "write" }

[[credentials.github]]
entry = "gh-app"
when = 'action.endsWith(".read")'
repositories = ["acme/api", "acme/web"]
permissions = { contents = "read" }
"#,
    )
    .expect("policy");
    let set = cordon_policy::PolicySet::load_dir(dir.path()).expect("policy loads");
    let bindings = set.bindings_for("bot");
    let params = params.as_object().cloned().unwrap_or_default();
    cordon_policy::choose(&bindings["github"], action, &params).map(TokenScope::from_binding)
}

#[tokio::test]
async fn a_token_is_minted_with_a_verified_jwt_and_scoped_to_the_chosen_binding() {
    let a = app().await;
    let scope = chosen_scope("github.repo.read", serde_json::json!({})).expect("a binding");
    let i = InstanceId::new("bot", "1");
    let token = a
        .tokens
        .token(&i, GH, &scope, &a.entry, SystemTime::now())
        .await
        .expect("minted");
    assert!(token.expose().starts_with("ghs_"));
    assert_eq!(token.permissions, perms(&[("contents", "read")]));
    {
        let ledger = a.github.ledger();
        let issued = &ledger.tokens[token.expose()];
        assert_eq!(issued.repositories, ["api", "web"]);
        assert!(ledger.refused.is_empty());
    }
    assert_eq!(a.read_repo(token.expose(), "api").await, 200);
    assert_eq!(a.read_repo(token.expose(), "infra").await, 404);
    // The merge binding names only acme/api, with write.
    let merge =
        chosen_scope("github.pr.merge", serde_json::json!({"owner": "acme"})).expect("binding");
    let t2 = a
        .tokens
        .token(&i, GH, &merge, &a.entry, SystemTime::now())
        .await
        .expect("minted");
    assert_eq!(a.github.ledger().tokens[t2.expose()].repositories, ["api"]);
    assert_eq!(a.read_repo(t2.expose(), "web").await, 404);
    // No binding matches a merge elsewhere: no credential at all.
    assert!(chosen_scope("github.pr.merge", serde_json::json!({"owner": "evil"})).is_none());
}

#[tokio::test]
async fn tokens_are_cached_per_instance_and_scope() {
    let a = app().await;
    let read = TokenScope::new(
        "gh-app",
        &["acme/api".into()],
        &perms(&[("contents", "read")]),
    );
    let write = TokenScope::new(
        "gh-app",
        &["acme/api".into()],
        &perms(&[("contents", "write")]),
    );
    let (one, two) = (InstanceId::new("bot", "1"), InstanceId::new("bot", "2"));
    let now = SystemTime::now();
    let t1 = a
        .tokens
        .token(&one, GH, &read, &a.entry, now)
        .await
        .expect("t1");
    let again = a
        .tokens
        .token(&one, GH, &read, &a.entry, now + Duration::from_secs(600))
        .await
        .expect("t1 again");
    assert_eq!(t1.expose(), again.expose());
    let t_write = a
        .tokens
        .token(&one, GH, &write, &a.entry, now)
        .await
        .expect("write");
    let t_other = a
        .tokens
        .token(&two, GH, &read, &a.entry, now)
        .await
        .expect("other instance");
    assert_ne!(t1.expose(), t_write.expose());
    assert_ne!(t1.expose(), t_other.expose());
    assert_eq!(a.github.ledger().tokens.len(), 3);
}

#[tokio::test]
async fn a_cache_hit_reads_no_vault_entry() {
    let a = app().await;
    let scope = TokenScope::new("gh-app", &[], &BTreeMap::new());
    let i = InstanceId::new("bot", "1");
    let loads = std::sync::atomic::AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(a.entry.clone())
    };
    let now = SystemTime::now();
    let t1 = a
        .tokens
        .token_lazy(&i, GH, &scope, now, load)
        .await
        .expect("mint");
    let t2 = a
        .tokens
        .token_lazy(&i, GH, &scope, now, load)
        .await
        .expect("hit");
    assert_eq!(t1.expose(), t2.expose());
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A vault failure is the caller's typed error, and nothing is cached.
    let other = InstanceId::new("bot", "2");
    let err = a
        .tokens
        .token_lazy(&other, GH, &scope, now, || async {
            Err(GithubError::Vault(cordon_vault::VaultError::NotFound(
                "gh-app".into(),
            )))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::Vault(_)), "{err}");
}

#[tokio::test]
async fn a_token_near_expiry_is_replaced_and_the_old_one_revoked() {
    let a = app().await;
    let scope = TokenScope::new("gh-app", &[], &BTreeMap::new());
    let i = InstanceId::new("bot", "1");
    let now = SystemTime::now();
    let old = a
        .tokens
        .token(&i, GH, &scope, &a.entry, now)
        .await
        .expect("first");
    // 56 minutes on, the hour-long token has 4 minutes left: inside the
    // 5-minute margin.
    let later = now + Duration::from_secs(56 * 60);
    a.github.ledger().clock_offset_secs = 56 * 60;
    let new = a
        .tokens
        .token(&i, GH, &scope, &a.entry, later)
        .await
        .expect("refreshed");
    assert_ne!(old.expose(), new.expose());
    let ledger = a.github.ledger();
    assert!(ledger.tokens[old.expose()].revoked);
    assert!(!ledger.tokens[new.expose()].revoked);
}

#[tokio::test]
async fn ending_an_instance_revokes_its_tokens_and_only_its_own() {
    let a = app().await;
    let scope = TokenScope::new("gh-app", &["acme/api".into()], &BTreeMap::new());
    let other_scope = TokenScope::new("gh-app", &["acme/web".into()], &BTreeMap::new());
    let (ended, running) = (InstanceId::new("bot", "1"), InstanceId::new("bot", "2"));
    let now = SystemTime::now();
    let t1 = a
        .tokens
        .token(&ended, GH, &scope, &a.entry, now)
        .await
        .expect("t1");
    let t2 = a
        .tokens
        .token(&ended, GH, &other_scope, &a.entry, now)
        .await
        .expect("t2");
    let t3 = a
        .tokens
        .token(&running, GH, &scope, &a.entry, now)
        .await
        .expect("t3");
    assert_eq!(a.read_repo(t1.expose(), "api").await, 200);
    let report = a.tokens.revoke_instance(&ended).await;
    assert_eq!(report.revoked, 2);
    assert!(report.failed.is_empty());
    assert_eq!(a.read_repo(t1.expose(), "api").await, 401);
    assert_eq!(a.read_repo(t2.expose(), "web").await, 401);
    assert_eq!(a.read_repo(t3.expose(), "api").await, 200);
    // A new request from a restarted instance of the same name mints anew.
    let fresh = a
        .tokens
        .token(&ended, GH, &scope, &a.entry, now)
        .await
        .expect("fresh");
    assert_ne!(fresh.expose(), t1.expose());
}

#[tokio::test]
async fn cutting_a_connector_revokes_its_tokens_mints_none_until_restored_then_mints_afresh() {
    let a = app().await;
    let scope = TokenScope::new("gh-app", &["acme/api".into()], &BTreeMap::new());
    let (bot, sub, other) = (
        InstanceId::new("bot", "1"),
        InstanceId::new("bot/helper", "2"),
        InstanceId::new("other", "3"),
    );
    let now = SystemTime::now();
    let mut minted = Vec::new();
    for (i, connector) in [(&bot, GH), (&sub, GH), (&other, GH), (&bot, "github-mcp")] {
        let t = a.tokens.token(i, connector, &scope, &a.entry, now).await;
        minted.push(t.expect("minted"));
    }
    let report = a.tokens.cut_connector("bot", GH).await;
    assert_eq!((report.revoked, report.failed.len()), (2, 0));
    // bot's and its sub-agent's github tokens are dead at GitHub; the other
    // agent's and bot's other connector's are not.
    let status: Vec<u16> = {
        let mut v = Vec::new();
        for t in &minted {
            v.push(a.read_repo(t.expose(), "api").await);
        }
        v
    };
    assert_eq!(status, [401, 401, 200, 200]);
    let refused = a.tokens.token(&bot, GH, &scope, &a.entry, now).await;
    assert!(
        matches!(refused, Err(GithubError::Withdrawn(_))),
        "nothing minted while cut: {refused:?}"
    );
    let tokens_at_github = a.github.ledger().tokens.len();
    a.tokens.restore_connector("bot", GH);
    let fresh = a
        .tokens
        .token(&bot, GH, &scope, &a.entry, now)
        .await
        .expect("minted after the resume");
    assert_ne!(fresh.expose(), minted[0].expose());
    assert_eq!(a.github.ledger().tokens.len(), tokens_at_github + 1);
    assert_eq!(a.read_repo(fresh.expose(), "api").await, 200);
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_refused() {
    let a = app().await;
    let stranger = GithubAppEntry {
        private_key_pem: rsa_key().serialize_pem(),
        ..a.entry.clone()
    };
    let scope = TokenScope::new("gh-app", &[], &BTreeMap::new());
    let err = a
        .tokens
        .token(
            &InstanceId::new("bot", "1"),
            GH,
            &scope,
            &stranger,
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GithubError::Refused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(a.github.ledger().refused.len(), 1);
    assert!(a.github.ledger().tokens.is_empty());
}

#[tokio::test]
async fn asking_beyond_the_installation_grant_is_refused() {
    let a = app().await;
    let scope = TokenScope::new("gh-app", &[], &perms(&[("administration", "write")]));
    let err = a
        .tokens
        .token(
            &InstanceId::new("bot", "1"),
            GH,
            &scope,
            &a.entry,
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GithubError::Refused { status: 422, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_key_that_is_not_rsa_pem_is_a_typed_error() {
    let a = app().await;
    let broken = GithubAppEntry {
        private_key_pem: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            .into(),
        ..a.entry.clone()
    };
    let scope = TokenScope::new("gh-app", &[], &BTreeMap::new());
    let err = a
        .tokens
        .token(
            &InstanceId::new("bot", "1"),
            GH,
            &scope,
            &broken,
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GithubError::PrivateKey(_) | GithubError::Jwt(_)),
        "{err}"
    );
}
