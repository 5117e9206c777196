//! Intercepted HTTPS and HTTP, end to end: unmodified clients inside agents trust Cordon through
//! the environment it sets, every request becomes a named action with params, is decided,
//! audited, and only then reaches the upstream. Malformed and deceptive requests are refused.

use std::io::Read;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{PYTHON, show, stdout, world_writable_dir};
use cordon_e2e::{Method, Reply, World, require_root_or_skip};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "never delete branches"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[rule]]
id = "stripe"
action = "stripe.*"
decision = "allow"

[[rule]]
id = "llm"
action = "openai.*"
decision = "allow"

[[rule]]
id = "anthropic"
action = "anthropic.*"
decision = "allow"

[[rule]]
id = "slack"
action = "slack.*"
decision = "allow"

[[rule]]
id = "git"
action = "git.*"
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

fn curl(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["/usr/bin/curl", "-sS", "--max-time", "10"]
        .map(String::from)
        .into();
    v.extend(args.iter().map(|s| (*s).to_owned()));
    v
}

fn run(w: &World, agent: &str, cmd: &[String]) -> Output {
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    w.run(agent, &cmd).unwrap()
}

/// The last line curl printed for `-w '\n%{http_code}'`, and the body before it.
fn split_code(out: &Output) -> (String, u16) {
    let text = stdout(out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (body.to_owned(), code.trim().parse().unwrap_or(0))
}

/// curl with `-i`: (status code, lower-cased header block, body).
fn curl_full(w: &World, agent: &str, args: &[&str]) -> (u16, String, String, Output) {
    let mut all = vec!["-i", "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let out = run(w, agent, &curl(&all));
    let (text, code) = split_code(&out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", text.as_str()));
    (code, head.to_ascii_lowercase(), body.to_owned(), out)
}

#[test]
fn https_clients_in_an_agent_are_intercepted_decided_and_forwarded() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();

    let c = run(
        &w,
        "bot",
        &curl(&[
            "-f",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"title":"from curl"}"#,
            "https://api.github.com/repos/o/r/issues",
        ]),
    );
    assert!(c.status.success(), "curl: {}", show(&c));

    let py = "import urllib.request\n\
              r = urllib.request.urlopen('https://api.github.com/repos/o/r/issues/7', timeout=10)\n\
              print(r.status)";
    let p = w.python("bot", py, &[]).unwrap();
    assert_eq!(stdout(&p).trim(), "200", "python: {}", show(&p));

    let js = "require('https').get('https://api.github.com/repos/o/r/pulls/3', r => {\
              r.resume(); r.on('end', () => console.log(r.statusCode)); })\
              .on('error', e => { console.error(e); process.exit(1); });";
    let n = w.run("bot", &["/usr/bin/node", "-e", js]).unwrap();
    assert_eq!(stdout(&n).trim(), "200", "node: {}", show(&n));

    let has_requests = std::process::Command::new(PYTHON)
        .args(["-c", "import requests"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_requests {
        let rq = "import requests\n\
                  print(requests.get('https://api.github.com/repos/o/r/pulls', timeout=10).status_code)";
        let r = w.python("bot", rq, &[]).unwrap();
        assert_eq!(stdout(&r).trim(), "200", "requests: {}", show(&r));
    }

    let seen = w.https.received();
    let paths: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        &paths[..3],
        [
            ("POST", "/repos/o/r/issues"),
            ("GET", "/repos/o/r/issues/7"),
            ("GET", "/repos/o/r/pulls/3")
        ],
    );
    assert_eq!(seen[0].body_text(), r#"{"title":"from curl"}"#);
    assert!(
        seen.iter()
            .all(|r| r.conn.sni.as_deref() == Some("api.github.com"))
    );

    let t = w.trail().unwrap().of_chain("bot");
    let create = t.one(
        "github.issue.create",
        &[("owner", json!("o")), ("repo", json!("r"))],
    );
    assert_eq!(create.params.get("title"), Some(&json!("from curl")), "{t}");
    assert_eq!((verdict(create), rule(create)), ("allow", "github"), "{t}");
    t.one("github.issue.read", &[("number", json!("7"))]);
    t.one("github.pr.read", &[("number", json!("3"))]);
}

#[test]
fn git_clone_and_push_in_an_agent_are_decided_as_git_actions() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    w.git.create_repo("o/r").unwrap();
    w.git.create_repo("team/proj").unwrap();
    let work = world_writable_dir().unwrap();
    let script = "set -e; cd \"$1\"; \
        git clone -q https://github.com/o/r.git r; cd r; echo one > one.txt; git add one.txt; \
        git commit -q -m one; git push -q origin main; cd ..; \
        git clone -q https://git.test/team/proj.git proj; cd proj; echo two > two.txt; \
        git add two.txt; git commit -q -m two; git push -q origin main; git rev-parse HEAD";
    let dir = work.path().to_str().unwrap();
    let mut cmd = w.agent("coder", &["/bin/sh", "-c", script, "sh", dir]);
    // Contained agents write only below their working directory.
    cmd.current_dir(work.path());
    for (k, v) in [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_AUTHOR_NAME", "Agent"),
        ("GIT_AUTHOR_EMAIL", "agent@e2e.test"),
        ("GIT_COMMITTER_NAME", "Agent"),
        ("GIT_COMMITTER_EMAIL", "agent@e2e.test"),
    ] {
        cmd.env(k, v);
    }
    let out = cordon_e2e::run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let head = stdout(&out).trim().to_owned();
    assert_eq!(
        w.git.rev("team/proj", "main").unwrap().as_deref(),
        Some(head.as_str())
    );
    let r_main = w.git.rev("o/r", "main").unwrap().unwrap();
    let r_log = cordon_e2e::run_checked(
        cordon_e2e::hermetic_git().args([
            "-C",
            w.git.repo_path("o/r").to_str().unwrap(),
            "log",
            "-1",
            "--format=%s",
            &r_main,
        ]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        stdout(&r_log).trim(),
        "one",
        "push to github.com did not land"
    );

    let t = w.trail().unwrap().of_chain("coder");
    for action in ["github.git.fetch", "github.git.push"] {
        let recs = t.matching(action, &[("owner", json!("o")), ("repo", json!("r"))]);
        assert!(
            !recs.is_empty() && recs.iter().all(|r| verdict(r) == "allow"),
            "{action}:\n{t}"
        );
    }
    for action in ["git.fetch", "git.push"] {
        let recs = t.matching(
            action,
            &[("host", json!("git.test")), ("repo", json!("team/proj"))],
        );
        assert!(
            !recs.is_empty() && recs.iter().all(|r| verdict(r) == "allow"),
            "{action}:\n{t}"
        );
    }
}

/// (method, url, content-type, body, action, expected params)
type RouteCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
);

fn route_cases() -> Vec<RouteCase> {
    let j = "application/json";
    let f = "application/x-www-form-urlencoded";
    vec![
        (
            "POST",
            "https://api.github.com/repos/o/r/issues",
            j,
            r#"{"title":"t1"}"#,
            "github.issue.create",
            json!({"owner": "o", "repo": "r", "title": "t1"}),
        ),
        (
            "PUT",
            "https://api.github.com/repos/o/r/pulls/7/merge",
            j,
            r#"{"merge_method":"squash"}"#,
            "github.pr.merge",
            json!({"owner": "o", "repo": "r", "number": "7", "merge_method": "squash", "base": "main"}),
        ),
        (
            "POST",
            "https://api.stripe.com/v1/charges",
            f,
            "amount=2000&currency=usd",
            "stripe.charge.create",
            json!({"amount": 2000, "currency": "usd"}),
        ),
        (
            "POST",
            "https://api.stripe.com/v1/refunds",
            f,
            "charge=ch_1&amount=500",
            "stripe.refund.create",
            json!({"amount": 500, "charge": "ch_1"}),
        ),
        (
            "POST",
            "https://api.openai.com/v1/chat/completions",
            j,
            r#"{"model":"gpt-4o","max_tokens":50}"#,
            "openai.chat.create",
            json!({"model": "gpt-4o", "max_tokens": 50}),
        ),
        (
            "POST",
            "https://api.openai.com/v1/embeddings",
            j,
            r#"{"model":"text-embedding-3-small"}"#,
            "openai.embedding.create",
            json!({"model": "text-embedding-3-small"}),
        ),
        (
            "POST",
            "https://api.anthropic.com/v1/messages",
            j,
            r#"{"model":"claude-x","max_tokens":100}"#,
            "anthropic.message.create",
            json!({"model": "claude-x", "max_tokens": 100}),
        ),
        (
            "POST",
            "https://api.anthropic.com/v1/messages/count_tokens",
            j,
            r#"{"model":"claude-x"}"#,
            "anthropic.message.count_tokens",
            json!({"model": "claude-x"}),
        ),
        (
            "POST",
            "https://slack.com/api/chat.postMessage",
            j,
            r#"{"channel":"C1","text":"hi"}"#,
            "slack.message.post",
            json!({"channel": "C1"}),
        ),
        (
            "GET",
            "https://slack.com/api/conversations.history?channel=C2",
            "",
            "",
            "slack.conversation.read",
            json!({"channel": "C2"}),
        ),
    ]
}

#[test]
fn shipped_connector_routes_become_the_documented_actions_through_the_proxy() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    // pr.merge is enriched with the PR's base branch, fetched upstream.
    w.https.route(
        Some(Method::GET),
        "/repos/o/r/pulls/7",
        Reply::json(200, &json!({"base": {"ref": "main"}})),
    );
    let cases = route_cases();
    for (i, (method, url, ctype, body, _, _)) in cases.iter().enumerate() {
        let mut args = vec!["-f", "-X", method, "-H", "x-case: x"];
        let case = format!("x-case: {i}");
        args[4] = &case;
        let ct = format!("content-type: {ctype}");
        if !body.is_empty() {
            args.extend(["-H", &ct, "--data-binary", body]);
        }
        args.push(url);
        let out = run(&w, "router", &curl(&args));
        assert!(out.status.success(), "{method} {url}: {}", show(&out));
    }
    let t = w.trail().unwrap().of_chain("router");
    for (i, (method, url, _, _, action, params)) in cases.iter().enumerate() {
        let want: Vec<(&str, Value)> = params
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let rec = t.one(action, &want);
        assert_eq!(verdict(rec), "allow", "{method} {url}:\n{t}");
        assert!(
            w.https
                .received()
                .iter()
                .any(|r| r.header("x-case") == Some(&i.to_string())),
            "{method} {url} did not reach the upstream"
        );
    }
}

#[test]
fn denied_request_gets_403_json_and_never_reaches_the_upstream() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let (code, headers, body, out) = curl_full(
        &w,
        "bot",
        &[
            "-X",
            "DELETE",
            "https://api.github.com/repos/o/r/git/refs/heads/feature/x",
        ],
    );
    assert_eq!(code, 403, "{}", show(&out));
    assert!(
        headers.contains("x-cordon-decision: deny"),
        "{}",
        show(&out)
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "denied by policy");
    assert_eq!(v["action"], "github.branch.delete");
    assert_eq!(
        v["params"],
        json!({"owner": "o", "repo": "r", "branch": "feature/x"})
    );
    assert_eq!(v["rule"], "no-branch-delete");
    assert_eq!(v["reason"], "never delete branches");
    let audit_id = v["audit_id"].as_u64().expect("audit_id is a number");
    assert_eq!(w.https.count(), 0, "the upstream saw a denied request");

    let t = w.trail().unwrap();
    let rec = t.one("github.branch.delete", &[("branch", json!("feature/x"))]);
    assert_eq!(
        (rec.seq, verdict(rec), rule(rec)),
        (audit_id, "deny", "no-branch-delete"),
        "{t}"
    );
}

/// Requests that try to deceive the proxy; each must be refused and leave the upstream untouched.
#[test]
fn domain_fronting_is_refused_over_http1_http2_and_pinned_addresses() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let pinned = format!("api.github.com:443:{}", w.ns.v4());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "host header",
            vec!["--http1.1", "-H", "Host: api.stripe.com"],
        ),
        (
            "h2 authority",
            vec!["--http2", "-H", "Host: api.stripe.com"],
        ),
        (
            "pinned address",
            vec![
                "--http1.1",
                "--resolve",
                &pinned,
                "-H",
                "Host: api.stripe.com",
            ],
        ),
    ];
    for (what, extra) in &cases {
        let mut args = vec!["-w", "\n%{http_code} %{http_version}"];
        args.extend(extra.iter().copied());
        args.push("https://api.github.com/v1/charges");
        let out = run(&w, "fronter", &curl(&args));
        let text = stdout(&out);
        let last = text.lines().last().unwrap_or("");
        assert!(last.starts_with("403"), "{what}: {}", show(&out));
        if *what == "h2 authority" {
            assert!(
                last.ends_with(" 2"),
                "{what} was not HTTP/2: {}",
                show(&out)
            );
        }
    }
    assert_eq!(w.https.count(), 0, "a fronted request reached the upstream");
    let t = w.trail().unwrap().of_chain("fronter");
    let fronted: Vec<_> = t
        .records()
        .iter()
        .filter(|r| rule(r) == "domain-fronting")
        .collect();
    assert_eq!(fronted.len(), cases.len(), "{t}");
    assert!(fronted.iter().all(|r| verdict(r) == "deny"));
    // The proxy still serves honest requests afterwards.
    let ok = run(
        &w,
        "other",
        &curl(&["-f", "https://api.github.com/repos/o/r/pulls"]),
    );
    assert!(ok.status.success(), "{}", show(&ok));
}

#[test]
fn oversized_http1_header_block_is_refused_and_audited() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let big = format!("X-Big: {}", "a".repeat(100 * 1024));
    for i in 0..3 {
        let url = format!("https://allowed.test/big{i}");
        let h1 = run(
            &w,
            "bot",
            &curl(&["--http1.1", "-w", "\n%{http_code}", "-H", &big, &url]),
        );
        let (_, code) = split_code(&h1);
        assert!(
            code == 431 || code == 400 || (code == 0 && !h1.status.success()),
            "h1: {}",
            show(&h1)
        );
    }
    assert_eq!(
        w.https.count(),
        0,
        "an oversized request reached the upstream"
    );
    let t = w.trail().unwrap().of_chain("bot");
    assert!(
        t.has("http.malformed", &[]),
        "no record of the refused request:\n{t}"
    );
}

#[test]
fn oversized_http2_header_block_is_refused_and_others_keep_working() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let big = format!("X-Big: {}", "a".repeat(100 * 1024));
    let h2 = run(
        &w,
        "bot",
        &curl(&[
            "--http2",
            "-w",
            "\n%{http_code}",
            "-H",
            &big,
            "https://allowed.test/big",
        ]),
    );
    let (_, code) = split_code(&h2);
    assert!(code != 200, "h2: {}", show(&h2));
    assert_eq!(
        w.https.count(),
        0,
        "an oversized request reached the upstream"
    );
    let ok = run(&w, "other", &curl(&["-f", "https://allowed.test/small"]));
    assert!(ok.status.success(), "{}", show(&ok));
    assert_eq!(w.https.count(), 1);
}

/// Content-Length and Transfer-Encoding together: the classic desync between proxy and server.
const SMUGGLE: &str = r#"
import socket
ip = socket.getaddrinfo("allowed.test", 80, socket.AF_INET)[0][4][0]
s = socket.create_connection((ip, 80), timeout=5)
s.sendall(b"POST /smuggle HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 4\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
data = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except Exception:
    pass
print(data.split(b"\r\n")[0].decode(errors="replace"))
"#;

#[test]
fn request_smuggling_with_content_length_and_transfer_encoding_is_refused() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let out = w.python("bot", SMUGGLE, &[]).unwrap();
    assert!(stdout(&out).starts_with("HTTP/1.1 400"), "{}", show(&out));
    assert_eq!(
        w.http.count(),
        0,
        "smuggled request reached the upstream: {:?}",
        w.http.received()
    );
    let t = w.trail().unwrap().of_chain("bot");
    let refused: Vec<_> = t
        .records()
        .iter()
        .filter(|r| matches!(rule(r), "request-smuggling" | "malformed-request"))
        .collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|r| verdict(r) == "deny"),
        "{t}"
    );
}

/// Half a ClientHello, then silence (bounded): the proxy must give up on its own.
const STALL: &str = r#"
import socket, struct, time
ip = socket.getaddrinfo("allowed.test", 443, socket.AF_INET)[0][4][0]
s = socket.create_connection((ip, 443), timeout=5)
hello = b"\x16\x03\x01" + struct.pack(">H", 512) + b"\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20
s.sendall(hello)
s.settimeout(25)
t0 = time.time()
try:
    d = s.recv(100)
    what = "eof" if not d else "data"
except socket.timeout:
    what = "timeout"
except OSError as e:
    what = "reset"
print(what, round(time.time() - t0, 1), flush=True)
"#;

#[test]
fn stalled_tls_handshake_is_cut_off_while_other_agents_keep_working() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let mut staller = w.agent("staller", &[PYTHON, "-c", STALL]);
    let mut child = staller
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    let ok = run(
        &w,
        "other",
        &curl(&["-f", "https://allowed.test/during-stall"]),
    );
    assert!(ok.status.success(), "{}", show(&ok));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "blocked by the stalled handshake"
    );
    let status = cordon_e2e::process::wait_child(&mut child, Duration::from_secs(30)).unwrap();
    if status.is_none() {
        let _ = child.kill();
    }
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.starts_with("eof") || text.starts_with("reset"),
        "staller saw: {text:?}"
    );
    assert_eq!(w.https.count(), 1);
    let t = w.trail().unwrap().of_chain("staller");
    let rec = t.one("tcp.connect", &[("port", json!(443))]);
    assert_eq!((verdict(rec), rule(rec)), ("deny", "tls-handshake"), "{t}");
}

#[test]
fn upstream_tls_verification_failure_is_a_502_json() {
    require_root_or_skip!();
    let w = World::start_untrusted_upstream(POLICY).unwrap();
    let (code, headers, body, out) = curl_full(&w, "bot", &["https://allowed.test/x"]);
    assert_eq!(code, 502, "{}", show(&out));
    assert!(
        headers.contains("x-cordon-decision: error"),
        "{}",
        show(&out)
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rule"], "upstream-error", "{body}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or("")
            .contains("TLS verification"),
        "{body}"
    );
    assert_eq!(w.https.count(), 0);
    assert!(
        w.daemon.log().contains("upstream TLS verification failed"),
        "{}",
        w.daemon.log()
    );
    let t = w.trail().unwrap().of_chain("bot");
    t.one(
        "http.request",
        &[("host", json!("allowed.test")), ("path", json!("/x"))],
    );
}
