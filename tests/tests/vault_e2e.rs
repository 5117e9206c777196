//! The credential vault end to end: agents hold placeholders, the upstream gets the real secret
//! only after policy allowed the request, and the secret shows up nowhere else - not in the
//! agent's environment, not in what the agent receives, not in the audit trail, the vault
//! listing or the daemon log. Foreign credentials are refused; a wrong master key stops the
//! daemon without touching the database; concurrent writes are all kept.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cordon_e2e::secrets::{
    assert_no_leak, github_token, random_alnum, store, stripe_key, vault_set_file, vault_set_stdin,
};
use cordon_e2e::trail::{AUDIT_DB, AUDIT_WAL, rule, verdict};
use cordon_e2e::world::{all_output, show, stdout};
use cordon_e2e::{
    Daemon, DaemonOpts, Reply, World, cordon_bin, require_root_or_skip, run_with_timeout,
};
use serde_json::{Value, json};

const RULES: &str = r#"
default = "deny"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[rule]]
id = "stripe"
action = "stripe.*"
decision = "allow"
"#;

/// A policy for `agents` with the shared rules and `credentials` (connector, vault entry).
fn policy(agents: &str, credentials: &[(&str, &str)]) -> String {
    let mut p = format!("agents = [{agents}]\n{RULES}");
    if !credentials.is_empty() {
        p.push_str("\n[credentials]\n");
        for (connector, entry) in credentials {
            p.push_str(&format!("{connector} = \"{entry}\"\n"));
        }
    }
    p
}

/// A world whose daemon logs at debug level, so the log check covers the chattiest output.
fn debug_world(policy: &str) -> World {
    let mut w = World::start(policy).unwrap();
    let opts = DaemonOpts::new(&w.policies.path(), w.dns.addr())
        .upstream_ca(&w.ca.pem_path())
        .env("CORDON_LOG", "debug");
    w.daemon = Daemon::start(opts).unwrap();
    w
}

fn sh(w: &World, agent: &str, script: &str) -> Output {
    w.run(agent, &["/bin/sh", "-c", script]).unwrap()
}

/// Status codes of every `HTTP/x NNN` status line `curl -i` printed.
fn status_codes(text: &str) -> Vec<u16> {
    text.lines()
        .filter(|l| l.starts_with("HTTP/"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// `Authorization` values the upstream received for requests whose path starts with `prefix`.
fn auth_seen(w: &World, prefix: &str) -> Vec<Option<String>> {
    w.https
        .received()
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect()
}

fn vault_list(w: &World) -> Output {
    let out = w.daemon.cordon(&["vault", "list"]).unwrap();
    assert!(out.status.success(), "vault list: {}", show(&out));
    out
}

const CURL: &str = "/usr/bin/curl -sS -i --max-time 10";

#[test]
fn agents_use_placeholders_and_the_upstream_sees_the_real_token() {
    require_root_or_skip!();
    let w = debug_world(&policy(
        "\"*\"",
        &[("github", "gh-main"), ("stripe", "stripe-main")],
    ));
    let gh = github_token();
    let st = stripe_key();
    let set = vault_set_stdin(&w.daemon, "gh-main", "github-token", &gh).unwrap();
    assert!(set.status.success(), "{}", show(&set));
    assert!(stdout(&set).contains("stored gh-main"), "{}", show(&set));
    let set = vault_set_file(&w.daemon, "stripe-main", "stripe-key", &st).unwrap();
    assert!(set.status.success(), "{}", show(&set));

    w.https.echo_header("authorization");
    // An upstream that hands the token back in a header and in the body.
    w.https.route(
        None,
        "/repos/o/r/issues/1",
        Reply::text(200, &format!("your token is {gh}, keep it safe")).with_header("x-token", &gh),
    );
    let script = format!(
        "echo '=== environ'; tr '\\0' '\\n' < /proc/self/environ; \
         echo '=== github bearer'; {CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
           https://api.github.com/repos/o/r/issues/1; \
         echo; echo '=== github token'; {CURL} -H \"Authorization: token $GH_TOKEN\" \
           https://api.github.com/repos/o/r/pulls/2; \
         echo; echo '=== stripe'; {CURL} -H \"Authorization: Bearer $STRIPE_API_KEY\" \
           -d amount=100 -d currency=usd https://api.stripe.com/v1/charges; echo"
    );
    let out = sh(&w, "bot", &script);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(status_codes(&text), [200, 200, 200], "{}", show(&out));

    // The upstream got the real secrets, in the connector's scheme.
    let bearer_gh = format!("Bearer {gh}");
    assert_eq!(
        auth_seen(&w, "/repos/o/r/"),
        [Some(bearer_gh.clone()), Some(bearer_gh)]
    );
    assert_eq!(auth_seen(&w, "/v1/charges"), [Some(format!("Bearer {st}"))]);

    // The agent held placeholders only, and saw the echoes redacted.
    for var in [
        "GITHUB_TOKEN=cordon-placeholder-github",
        "GH_TOKEN=cordon-placeholder-github",
        "STRIPE_API_KEY=cordon-placeholder-stripe",
        "STRIPE_SECRET_KEY=cordon-placeholder-stripe",
    ] {
        assert!(text.lines().any(|l| l == var), "{var} missing:\n{text}");
    }
    assert!(
        text.contains("your token is [REDACTED], keep it safe"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("x-token: [redacted]"),
        "{text}"
    );
    assert!(
        text.contains(r#""authorization":"Bearer [REDACTED]""#),
        "{text}"
    );
    let secrets = [gh.as_str(), st.as_str()];
    assert_no_leak("what the agent saw", &all_output(&out), &secrets);

    // Nothing an operator or auditor reads holds it either.
    let export = w
        .daemon
        .cordon(&["audit", "export", "--format", "jsonl"])
        .unwrap();
    assert!(export.status.success(), "{}", show(&export));
    let lines = stdout(&export);
    assert!(lines.contains("github.issue.read"), "{lines}");
    assert!(lines.contains("stripe.charge.create"), "{lines}");
    assert_no_leak("cordon audit export", &all_output(&export), &secrets);
    let listed = vault_list(&w);
    let listing = stdout(&listed);
    assert!(
        listing.contains("gh-main") && listing.contains("stripe-main"),
        "{listing}"
    );
    assert_no_leak("cordon vault list", &all_output(&listed), &secrets);
    assert_no_leak("the daemon log", w.daemon.log().as_bytes(), &secrets);
    // The database holds the vault sealed, and no record of the audit trail carries a secret.
    let db = std::fs::read(w.daemon.state_dir().join(AUDIT_DB)).unwrap();
    assert_no_leak("the database file", &db, &secrets);
    let wal = std::fs::read(w.daemon.state_dir().join(AUDIT_WAL)).unwrap();
    assert_no_leak("the audit write-ahead log", &wal, &secrets);
}

#[test]
fn two_agents_bound_to_different_tokens_each_reach_the_upstream_with_their_own() {
    require_root_or_skip!();
    let w = World::start(&policy("\"alice\"", &[("github", "alice-gh")])).unwrap();
    w.policies
        .write("bob.toml", &policy("\"bob\"", &[("github", "bob-gh")]))
        .unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let (alice_tok, bob_tok) = (github_token(), github_token());
    store(&w.daemon, "alice-gh", &alice_tok).unwrap();
    store(&w.daemon, "bob-gh", &bob_tok).unwrap();
    w.https.echo_header("authorization");

    let script = |who: &str| {
        format!(
            "for i in 1 2 3 4 5; do {CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
             https://api.github.com/repos/{who}/r/issues/$i; echo; done"
        )
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| sh(&w, "alice", &script("alice")));
        let b = s.spawn(|| sh(&w, "bob", &script("bob")));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(status_codes(&stdout(&a)), [200; 5], "{}", show(&a));
    assert_eq!(status_codes(&stdout(&b)), [200; 5], "{}", show(&b));

    let alice_seen = auth_seen(&w, "/repos/alice/");
    let bob_seen = auth_seen(&w, "/repos/bob/");
    assert_eq!(alice_seen, vec![Some(format!("Bearer {alice_tok}")); 5]);
    assert_eq!(bob_seen, vec![Some(format!("Bearer {bob_tok}")); 5]);
    // Each agent's echo is redacted; the other agent's token never reached it at all.
    assert_no_leak(
        "alice's responses",
        &all_output(&a),
        &[&alice_tok, &bob_tok],
    );
    assert_no_leak("bob's responses", &all_output(&b), &[&alice_tok, &bob_tok]);

    let listing = stdout(&vault_list(&w));
    let used_by = |name: &str| {
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"))
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(used_by("alice-gh"), "alice", "{listing}");
    assert_eq!(used_by("bob-gh"), "bob", "{listing}");
}

#[test]
fn an_agent_without_a_binding_gets_no_credential() {
    require_root_or_skip!();
    let w = World::start(&policy("\"*\"", &[])).unwrap();
    w.policies
        .write(
            "bound.toml",
            &policy("\"bound\"", &[("github", "gh-bound")]),
        )
        .unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let tok = github_token();
    store(&w.daemon, "gh-bound", &tok).unwrap();
    w.https.echo_header("authorization");

    let bound = sh(
        &w,
        "bound",
        &format!(
            "{CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
             https://api.github.com/repos/bound/r/issues/1"
        ),
    );
    assert_eq!(status_codes(&stdout(&bound)), [200], "{}", show(&bound));
    assert_eq!(
        auth_seen(&w, "/repos/bound/"),
        [Some(format!("Bearer {tok}"))]
    );

    // No placeholder in its environment; with nothing, or with the bound agent's placeholder
    // copied in, it still reaches the upstream without the real token.
    let script = format!(
        "echo \"env=[${{GITHUB_TOKEN-unset}}/${{GH_TOKEN-unset}}]\"; \
         {CURL} https://api.github.com/repos/stranger/r/issues/1; echo; \
         {CURL} -H 'Authorization: Bearer cordon-placeholder-github' \
           https://api.github.com/repos/stranger/r/issues/2; echo"
    );
    let out = sh(&w, "stranger", &script);
    let text = stdout(&out);
    assert!(text.contains("env=[unset/unset]"), "{}", show(&out));
    assert_eq!(status_codes(&text), [200, 200], "{}", show(&out));
    let seen = auth_seen(&w, "/repos/stranger/");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], None, "a credential appeared from nowhere");
    assert!(
        seen[1]
            .as_deref()
            .is_none_or(|v| v.contains("cordon-placeholder-github")),
        "the unbound agent got a credential: {seen:?}"
    );
    for v in seen.iter().flatten() {
        assert_no_leak(
            "what reached the upstream for the unbound agent",
            v.as_bytes(),
            &[&tok],
        );
    }
    assert_no_leak("the unbound agent's output", &all_output(&out), &[&tok]);
}

/// One GitHub read by agent `bot` sending `header`; the status code and the body.
fn github_read_with(w: &World, header: &str, number: usize) -> (u16, String, Output) {
    let url = format!("https://api.github.com/repos/o/r/issues/{number}");
    let cmd = [
        "/usr/bin/curl",
        "-sS",
        "--max-time",
        "10",
        "-H",
        header,
        "-w",
        "\n%{http_code}",
        &url,
    ];
    let out = w.run("bot", &cmd).unwrap();
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned(), out)
}

#[test]
fn a_foreign_real_looking_credential_is_refused() {
    require_root_or_skip!();
    let w = World::start(&policy("\"*\"", &[("github", "gh-main")])).unwrap();
    let tok = github_token();
    store(&w.daemon, "gh-main", &tok).unwrap();
    let foreign = github_token();
    let opaque = random_alnum(40);

    for (i, header) in [
        format!("Authorization: Bearer {foreign}"),
        format!("Authorization: token {foreign}"),
        format!("Authorization: Bearer {opaque}"),
    ]
    .iter()
    .enumerate()
    {
        let (code, body, out) = github_read_with(&w, header, 100 + i);
        assert_eq!(code, 403, "{header}: {}", show(&out));
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("refusal is not JSON ({e}): {}", show(&out)));
        assert_eq!(body["rule"], json!("credential"), "{body}");
        assert_eq!(body["error"], json!("credential refused"), "{body}");
        assert_no_leak("the refusal", &all_output(&out), &[&tok]);
    }
    assert_eq!(
        w.https.count(),
        0,
        "a request with a foreign credential reached the upstream: {:?}",
        w.https.received()
    );
    // The placeholder still works for the same agent right after.
    let (code, _, out) = github_read_with(&w, "Authorization: Bearer cordon-placeholder-github", 1);
    assert_eq!(code, 200, "{}", show(&out));
    assert_eq!(
        auth_seen(&w, "/repos/o/r/"),
        [Some(format!("Bearer {tok}"))]
    );
}

#[test]
fn a_refused_foreign_credential_is_audited_as_a_denial() {
    require_root_or_skip!();
    let w = World::start(&policy("\"*\"", &[("github", "gh-main")])).unwrap();
    store(&w.daemon, "gh-main", &github_token()).unwrap();
    let (code, _, out) =
        github_read_with(&w, &format!("Authorization: Bearer {}", github_token()), 9);
    assert_eq!(code, 403, "{}", show(&out));
    let t = w.trail().unwrap().of_chain("bot");
    let reads = t.matching("github.issue.read", &[("number", json!("9"))]);
    assert!(
        !reads.is_empty(),
        "the refused request is not in the trail:\n{t}"
    );
    assert!(
        reads.iter().all(|r| verdict(r) != "allow"),
        "the trail says a refused request was allowed:\n{t}"
    );
    assert!(
        reads
            .iter()
            .any(|r| verdict(r) == "deny" && rule(r) == "credential"),
        "no denial by rule `credential`:\n{t}"
    );
}

fn sha256(path: &std::path::Path) -> String {
    let out =
        run_with_timeout(Command::new("sha256sum").arg(path), Duration::from_secs(20)).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out)
}

/// A world whose vault holds `secret` (bound to every agent's GitHub), its daemon stopped, and
/// `vault.key` overwritten with 32 other bytes (mode 0600).
struct WrongKey {
    w: World,
    secret: String,
    right_key: Vec<u8>,
    wrong_key: Vec<u8>,
    /// `cordon vault list` while the daemon still had the right key.
    listing: String,
}

impl WrongKey {
    fn new() -> Self {
        let mut w = World::start(&policy("\"*\"", &[("github", "gh-main")])).unwrap();
        let secret = github_token();
        store(&w.daemon, "gh-main", &secret).unwrap();
        store(&w.daemon, "unbound", &random_alnum(30)).unwrap();
        let listing = stdout(&vault_list(&w));
        w.daemon.stop().unwrap();
        let key_file = w.daemon.state_dir().join("vault.key");
        let right_key = std::fs::read(&key_file).unwrap();
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "vault.key mode");
        assert_eq!(right_key.len(), 32, "vault.key length");
        let mut wrong_key = right_key.clone();
        while wrong_key == right_key {
            wrong_key = random_alnum(32).into_bytes();
        }
        Self {
            w,
            secret,
            right_key,
            wrong_key,
            listing,
        }
    }

    fn key_file(&self) -> std::path::PathBuf {
        self.w.daemon.state_dir().join("vault.key")
    }

    fn put_wrong_key(&self) {
        std::fs::write(self.key_file(), &self.wrong_key).unwrap();
        std::fs::set_permissions(self.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// `cordon daemon` with the harness's arguments, run to its exit (bounded).
    fn start_daemon_directly(&self) -> (Output, Duration) {
        let w = &self.w;
        let mut daemon = Command::new(cordon_bin());
        daemon
            .arg("daemon")
            .arg("--state-dir")
            .arg(w.daemon.state_dir())
            .arg("--policies")
            .arg(w.policies.path())
            .arg("--dns-upstream")
            .arg(w.dns.addr().to_string())
            .arg("--upstream-ca")
            .arg(w.ca.pem_path());
        let started = Instant::now();
        let out = run_with_timeout(&mut daemon, Duration::from_secs(20)).unwrap();
        (out, started.elapsed())
    }
}

#[test]
fn a_wrong_key_file_stops_the_daemon_and_leaves_the_vault_unchanged() {
    require_root_or_skip!();
    let mut k = WrongKey::new();
    k.put_wrong_key();
    let (out, took) = k.start_daemon_directly();
    assert!(
        !out.status.success(),
        "daemon started with a wrong key: {}",
        show(&out)
    );
    assert!(took < Duration::from_secs(10), "refusal took {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line: {}", show(&out));
    assert!(
        errors[0].contains("key") && errors[0].contains("vault.key"),
        "the error does not name the key file: {}",
        show(&out)
    );
    assert_eq!(
        std::fs::read(k.key_file()).unwrap(),
        k.wrong_key,
        "the key file was replaced"
    );

    // With the right key back, the same vault opens: same entries, same versions, same secret.
    std::fs::write(k.key_file(), &k.right_key).unwrap();
    k.w.daemon.restart().unwrap();
    assert_eq!(stdout(&vault_list(&k.w)), k.listing, "the vault changed");
    k.w.https.echo_header("authorization");
    let ok = sh(
        &k.w,
        "bot",
        &format!(
            "{CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com/repos/o/r/issues/1"
        ),
    );
    assert_eq!(status_codes(&stdout(&ok)), [200], "{}", show(&ok));
    assert_eq!(
        auth_seen(&k.w, "/repos/o/r/"),
        [Some(format!("Bearer {}", k.secret))]
    );
}

#[test]
fn a_wrong_key_file_does_not_write_the_database_file() {
    require_root_or_skip!();
    let k = WrongKey::new();
    let db = k.w.daemon.state_dir().join(AUDIT_DB);
    let before = sha256(&db);
    k.put_wrong_key();
    let (out, _) = k.start_daemon_directly();
    assert!(
        !out.status.success(),
        "daemon started with a wrong key: {}",
        show(&out)
    );
    assert_eq!(
        sha256(&db),
        before,
        "the database file changed: {}",
        show(&out)
    );
}

/// Bounded loop of GitHub reads with the placeholder; prints each status code.
const GITHUB_LOOP: &str = r#"
import os, sys, urllib.request
tok = os.environ["GITHUB_TOKEN"]
for i in range(int(sys.argv[1])):
    req = urllib.request.Request("https://api.github.com/repos/o/r/issues/%d" % i,
                                 headers={"Authorization": "Bearer " + tok})
    try:
        print(urllib.request.urlopen(req, timeout=10).status, flush=True)
    except Exception as e:
        print("fail", e, flush=True)
"#;

#[test]
fn vault_set_while_the_daemon_runs_loses_no_writes() {
    require_root_or_skip!();
    let w = World::start(&policy("\"*\"", &[("github", "gh-main")])).unwrap();
    let tok = github_token();
    store(&w.daemon, "gh-main", &tok).unwrap();
    let values: Vec<(String, String)> = (0..20)
        .map(|i| (format!("s-{i:02}"), random_alnum(24)))
        .collect();

    let (agents, sets) = std::thread::scope(|s| {
        let agents: Vec<_> = (0..2)
            .map(|_| s.spawn(|| w.python("looper", GITHUB_LOOP, &["15"]).unwrap()))
            .collect();
        let sets: Vec<_> = values
            .iter()
            .map(|(name, value)| {
                let d = &w.daemon;
                s.spawn(move || vault_set_stdin(d, name, "token", value).unwrap())
            })
            .collect();
        let sets: Vec<Output> = sets.into_iter().map(|h| h.join().unwrap()).collect();
        let agents: Vec<Output> = agents.into_iter().map(|h| h.join().unwrap()).collect();
        (agents, sets)
    });
    for (out, (name, _)) in sets.iter().zip(&values) {
        assert!(out.status.success(), "{name}: {}", show(out));
        assert_eq!(
            stdout(out).trim(),
            format!("stored {name} (version 1)"),
            "{}",
            show(out)
        );
    }
    for out in &agents {
        assert_eq!(
            stdout(out).lines().filter(|l| *l == "200").count(),
            15,
            "{}",
            show(out)
        );
    }
    assert!(
        auth_seen(&w, "/repos/o/r/")
            .iter()
            .all(|a| *a == Some(format!("Bearer {tok}"))),
        "an injection during the writes used another value"
    );

    let listing = stdout(&vault_list(&w));
    let names: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for (name, _) in &values {
        assert!(names.contains(&name.as_str()), "{name} missing:\n{listing}");
    }
    assert_eq!(names.len(), 21, "{listing}");

    // The stored value, not just the name: bind one of them and look at what is injected.
    let (name, value) = &values[7];
    w.policies
        .write(
            cordon_e2e::world::POLICY_FILE,
            &policy("\"*\"", &[("github", name)]),
        )
        .unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    w.https.clear();
    let out = w.python("checker", GITHUB_LOOP, &["1"]).unwrap();
    assert_eq!(stdout(&out).trim(), "200", "{}", show(&out));
    assert_eq!(
        auth_seen(&w, "/repos/o/r/"),
        [Some(format!("Bearer {value}"))]
    );
}
