//! Attacks on an injected credential through an upstream that hands the request back. The
//! agent holds a placeholder; Cordon puts the real secret on the request; the upstream echoes
//! what it got. Whatever the echo reaches the agent as, the secret must not be in it:
//! - in the spelling the request carried it: base64 in a basic-auth header, percent-encoded
//!   in a query (the agent could decode either);
//! - compressed, which hides it from any search: Cordon asks the upstream for identity, and
//!   an answer compressed anyway is withheld, with a failed outcome on the trail;
//! - in an answer Cordon reads itself (an enrichment lookup, made with the agent's bound
//!   credential): what it reads becomes params, which the trail keeps and a refusal shows.
//!
//! And a bound credential goes out only over TLS: never where anyone on the path reads it.
//!
//! Each test asserts that no piece of the secret, in any spelling, reached the agent.

use std::time::Duration;

use cordon_e2e::secrets::{assert_no_leak, github_token, random_alnum};
use cordon_e2e::world::{all_output, show, stdout};
use cordon_e2e::{Gzip, Method, Reply, World, read_trail, read_trail_when, require_root_or_skip};

const RULES: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"

[[rule]]
id = "echob"
action = "echob.*"
decision = "allow"

[[rule]]
id = "echoq"
action = "echoq.*"
decision = "allow"

[[rule]]
id = "merge-release"
action = "github.pr.merge"
decision = "allow"
when = 'params.base == "release"'

[[rule]]
id = "no-other-merge"
action = "github.pr.merge"
decision = "deny"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"
"#;

/// Basic auth with a fixed user, as git over HTTPS takes a token.
const BASIC: &str = r#"
name = "echob"
hosts = ["allowed.test"]

[credential]
scheme = "basic"
username = "svc"
placeholder_env = ["ECHOB_TOKEN"]

[[route]]
method = "GET"
path = "/echo"
action = "echob.read"
"#;

/// The key in a query parameter.
const QUERY: &str = r#"
name = "echoq"
hosts = ["denied.test"]

[credential]
scheme = "query"
param = "key"
placeholder_env = ["ECHOQ_KEY"]

[[route]]
method = "GET"
path = "/echo"
action = "echoq.read"
"#;

const CURL: &str = "/usr/bin/curl -sS -i --max-time 10";

/// A world with the two echo connectors, whose policy binds each connector named in `secrets`
/// to a vault entry holding the value given for it.
fn world(secrets: &[(&str, &str)]) -> World {
    let w = World::start(RULES).unwrap();
    w.policies.write("connectors/echob.toml", BASIC).unwrap();
    w.policies.write("connectors/echoq.toml", QUERY).unwrap();
    w.bind_credentials(RULES, secrets).unwrap();
    w
}

/// Runs `script` as agent `bot`: its stdout, and stdout and stderr together.
fn agent(w: &World, script: &str) -> (String, Vec<u8>) {
    let out = w.run("bot", &["/bin/sh", "-c", script]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    (stdout(&out), all_output(&out))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn an_echoed_basic_auth_header_reaches_the_agent_without_the_token_in_base64() {
    require_root_or_skip!();
    let token = format!("bt_{}", random_alnum(32));
    let w = world(&[("echob", &token)]);
    w.https.echo_header("authorization");
    let (text, all) = agent(
        &w,
        &format!("{CURL} -u \"svc:$ECHOB_TOKEN\" https://allowed.test/echo"),
    );
    let wire = base64(format!("svc:{token}").as_bytes());
    // The upstream got the token, spelled as basic auth spells it.
    let seen: Vec<_> = w
        .https
        .received()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(seen, [format!("Basic {wire}")]);
    // Its echo reached the agent scrubbed; the base64 would have decoded to the token.
    assert!(
        text.contains(r#""authorization":"Basic [REDACTED]""#),
        "{text}"
    );
    assert_no_leak("what the agent saw", &all, &[&token, &wire]);
}

#[test]
fn an_echoed_query_key_reaches_the_agent_without_its_percent_encoding() {
    require_root_or_skip!();
    // Characters a query must encode, so the wire spelling differs from the key.
    let key = format!("qk+{}/{}=", random_alnum(16), random_alnum(16));
    let encoded = key
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let w = world(&[("echoq", &key)]);
    let (text, all) = agent(
        &w,
        &format!("{CURL} \"https://denied.test/echo?n=1&key=$ECHOQ_KEY\""),
    );
    let paths: Vec<_> = w.https.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, [format!("/echo?n=1&key={encoded}")]);
    // The default reply echoes the path and query it was asked for.
    assert!(text.contains("/echo?n=1&key=[REDACTED]"), "{text}");
    assert_no_leak("what the agent saw", &all, &[&key, &encoded]);
}

#[test]
fn a_compressed_echo_is_asked_for_as_identity_and_one_compressed_anyway_is_withheld() {
    require_root_or_skip!();
    let gh = github_token();
    let w = world(&[("github", &gh)]);
    w.https.echo_header("authorization");
    w.https.echo_header("accept-encoding");
    // `--compressed` offers gzip and inflates what comes back: had a gzipped echo been let
    // through, the token would be in the agent's output.
    let fetch = format!(
        "{CURL} --compressed -H \"Authorization: Bearer $GITHUB_TOKEN\" \
         https://api.github.com/repos/o/r/issues/1"
    );

    // A server that compresses only when asked is asked for identity.
    w.https.gzip(Gzip::WhenAccepted);
    let (text, all) = agent(&w, &fetch);
    assert!(text.starts_with("HTTP/"), "{text}");
    assert!(text.contains(" 200"), "{text}");
    assert!(
        text.contains(r#""authorization":"Bearer [REDACTED]""#),
        "{text}"
    );
    assert!(text.contains(r#""accept-encoding":"identity""#), "{text}");
    assert_no_leak("what the agent saw (identity)", &all, &[&gh]);

    // A server that compresses whatever it is asked: the answer is withheld.
    w.https.gzip(Gzip::Always);
    let (text, all) = agent(&w, &fetch);
    assert!(text.contains(" 502"), "{text}");
    // Cordon's own answer, not the upstream's compressed one.
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "{text}"
    );
    assert!(text.contains(r#""rule":"upstream-error""#), "{text}");
    assert_no_leak("what the agent saw (gzip)", &all, &[&gh]);
    // The request went out (the upstream acted on it); the trail says why its answer did not
    // come back.
    assert_eq!(w.https.received().len(), 2);
    let decided = |t: &cordon_e2e::Trail| {
        let mut seqs: Vec<u64> = t
            .matching("github.issue.read", &[])
            .iter()
            .map(|r| r.seq)
            .collect();
        seqs.sort_unstable();
        seqs
    };
    let trail = read_trail_when(w.daemon.state_dir(), "bot", Duration::from_secs(10), |t| {
        decided(t)
            .last()
            .is_some_and(|&seq| !t.outcome_of(seq).is_empty())
    })
    .unwrap();
    let seqs = decided(&trail);
    assert_eq!(seqs.len(), 2, "{:?}", trail.records());
    let error = trail.failure_of(seqs[1]);
    assert!(
        error.contains("content-encoding: gzip") && error.contains("withheld"),
        "{error}"
    );
}

#[test]
fn an_enrichment_answer_carrying_the_token_puts_it_in_no_param_record_or_refusal() {
    require_root_or_skip!();
    let gh = github_token();
    let w = world(&[("github", &gh)]);
    // The lookup that names a merge's base branch, answered by an upstream that puts the
    // credential it was sent where the connector reads the branch.
    w.https.route(
        Some(Method::GET),
        "/repos/o/r/pulls/5",
        Reply::json(
            200,
            &serde_json::json!({"number": 5, "base": {"ref": format!("x{gh}x")}}),
        ),
    );
    let (text, all) = agent(
        &w,
        &format!(
            "{CURL} -X PUT -H \"Authorization: Bearer $GITHUB_TOKEN\" -d '{{}}' \
             https://api.github.com/repos/o/r/pulls/5/merge"
        ),
    );
    // The lookup went out with the credential, as enrichment does.
    let lookups: Vec<_> = w
        .https
        .received()
        .iter()
        .filter(|r| r.path == "/repos/o/r/pulls/5")
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(lookups, [Some(format!("Bearer {gh}"))]);
    // Denied (the base is not "release"), and the refusal names the base it read, scrubbed.
    assert!(text.contains(" 403"), "{text}");
    assert!(text.contains(r#""base":"x[REDACTED]x""#), "{text}");
    assert_no_leak("what the agent saw", &all, &[&gh]);
    let trail = read_trail(w.daemon.state_dir()).unwrap();
    let merge = trail.one("github.pr.merge", &[]);
    assert_eq!(
        merge.params.get("base"),
        Some(&serde_json::json!("x[REDACTED]x"))
    );
    let export = w
        .daemon
        .cordon(&["audit", "export", "--format", "jsonl"])
        .unwrap();
    assert!(export.status.success(), "{}", show(&export));
    assert_no_leak("cordon audit export", &export.stdout, &[&gh]);
}

#[test]
fn a_bound_credential_is_never_sent_over_plain_http() {
    require_root_or_skip!();
    let gh = github_token();
    let w = world(&[("github", &gh)]);
    // The agent picks http:// for a host its credential is bound to: on that leg anyone on
    // the path could read the token, and nothing proves the far end is GitHub.
    let (text, all) = agent(
        &w,
        &format!(
            "{CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
             http://api.github.com/repos/o/r/issues/1"
        ),
    );
    assert!(text.contains(" 403"), "{text}");
    assert!(
        text.contains("credential github-key for github is sent only over TLS"),
        "{text}"
    );
    assert_eq!(w.http.received().len(), 0, "the request went out");
    assert_no_leak("what the agent saw", &all, &[&gh]);
    // Over TLS the same request goes out with the credential.
    let (text, _) = agent(
        &w,
        &format!(
            "{CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
             https://api.github.com/repos/o/r/issues/1"
        ),
    );
    assert!(text.contains(" 200"), "{text}");
    let seen: Vec<_> = w
        .https
        .received()
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(seen, [Some(format!("Bearer {gh}"))]);
}
