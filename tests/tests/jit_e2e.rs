//! Just-in-time credentials end to end, with the real daemon, real clients
//! and issuers that check what the real ones check.
//!
//! GitHub App: an agent calls the GitHub API with its placeholder; the
//! daemon mints an installation token scoped to the binding at a local
//! GitHub that verifies the app JWT, the upstream receives that token and
//! never the placeholder, the agent never sees it, and the token is revoked
//! (the local GitHub records the DELETE) when the agent exits.
//!
//! AWS: boto3 and the AWS CLI sign with the placeholder keys Cordon gave the
//! instance; Cordon verifies the signature before deciding and re-signs
//! allowed requests with an STS session against moto (IAM enforced, so only
//! a correct re-signing with the session works). DeleteObject is refused by
//! policy; a request altered after signing and another instance's
//! placeholder are refused and audited.

use std::net::IpAddr;
use std::process::Output;
use std::time::Duration;

use cordon_e2e::jit::github::{self, FakeGithub};
use cordon_e2e::jit::moto::agent_python;
use cordon_e2e::jit::{AwsWorld, JitDaemon, Net, UNUSED_ISSUER};
use cordon_e2e::secrets::{assert_no_leak, vault_set_stdin};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{agent_command, show, stdout, world_writable_dir};
use cordon_e2e::{read_trail, require_root_or_skip, run_with_timeout, wait_until, workspace_root};
use serde_json::Value;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;

const AGENT_TIMEOUT: Duration = Duration::from_secs(60);

const GITHUB_POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[credentials.github]]
entry = "gh-app"
repositories = ["acme/api"]
permissions = { contents = "read", metadata = "read" }
"#;

const AWS_POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "no-deletes"
action = "aws.s3.delete_object"
decision = "deny"
reason = "agents never delete objects"

[[rule]]
id = "s3"
action = "aws.s3.*"
decision = "allow"

[credentials]
aws-s3 = "aws-agent"
"#;

const S3_NAMES: &[&str] = &[
    "s3.amazonaws.com",
    "s3.us-east-1.amazonaws.com",
    "docs.s3.amazonaws.com",
    "sts.amazonaws.com",
];

fn run(d: &JitDaemon, agent: &str, cmd: &[&str]) -> Output {
    run_with_timeout(&mut agent_command(&d.daemon, agent, cmd), AGENT_TIMEOUT).unwrap()
}

/// What `out` printed up to and including the first line containing
/// `marker` (bounded: the reader gives up after 15 s).
fn first_lines_with(out: std::process::ChildStdout, marker: &str) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&marker) {
                break;
            }
        }
        let _sent = tx.send(seen);
    });
    rx.recv_timeout(Duration::from_secs(15))
        .expect("instance A printed its environment")
}

fn set_readable(p: &std::path::Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn json_of(out: &Output) -> Value {
    let text = stdout(out);
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

#[test]
fn github_app_token_is_minted_for_the_upstream_hidden_from_the_agent_and_revoked_at_exit() {
    require_root_or_skip!();
    let net = Net::new().unwrap();
    let (pem, public) = github::app_key().unwrap();
    let ip = IpAddr::V4(net.ns.v4_at(3));
    let gh = FakeGithub::start(&net.ns, &net.ca, ip, &["api.github.com"], public).unwrap();
    net.resolve(&["api.github.com"], ip);
    let d = JitDaemon::start(&net, GITHUB_POLICY, &gh.base_url(), UNUSED_ISSUER).unwrap();
    let set =
        vault_set_stdin(&d.daemon, "gh-app", "github-app", &github::entry_json(&pem)).unwrap();
    assert!(set.status.success(), "{}", show(&set));

    let out = run(
        &d,
        "gh-bot",
        &[
            "/bin/sh",
            "-c",
            "echo token=$GITHUB_TOKEN; \
             curl -sS -w ' %{http_code}\\n' -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com/repos/acme/api; \
             curl -sS -w ' %{http_code}\\n' -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com/repos/acme/web; \
             env",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", show(&out));
    // In scope: served with the minted token. Out of the binding's scope
    // (acme/web): GitHub's own 404 for the scoped token.
    assert!(
        text.contains("\"full_name\":\"acme/api\"") && text.contains("} 200"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("Not Found") && text.contains("} 404"),
        "{}",
        show(&out)
    );
    let placeholder = text
        .lines()
        .find_map(|l| l.strip_prefix("token="))
        .unwrap_or("")
        .to_string();
    assert!(
        !placeholder.is_empty(),
        "the agent got a placeholder: {}",
        show(&out)
    );

    let (tokens, repo_auth) = {
        let l = gh.ledger();
        (l.tokens.clone(), l.repo_auth.clone())
    };
    assert_eq!(
        tokens.len(),
        1,
        "one token for the instance and scope: {tokens:?}"
    );
    let (token, issued) = tokens.iter().next().unwrap();
    assert_eq!(issued.repositories, ["api"], "scoped to the binding");
    assert_eq!(
        issued.permissions.get("contents").map(String::as_str),
        Some("read")
    );
    assert_eq!(repo_auth.len(), 2, "{repo_auth:?}");
    for auth in &repo_auth {
        assert_eq!(
            auth,
            &format!("Bearer {token}"),
            "the upstream got the minted token"
        );
        assert!(
            !auth.contains(&placeholder),
            "the placeholder never reaches GitHub"
        );
    }
    // Neither its output nor its environment ever held the token.
    let mut seen = out.stdout.clone();
    seen.extend_from_slice(&out.stderr);
    assert_no_leak("the agent's output and environment", &seen, &[token]);
    assert_no_leak("the daemon log", d.daemon.log().as_bytes(), &[token]);

    // The instance exited: its token is revoked at GitHub.
    wait_until("the token revoked", Duration::from_secs(15), || {
        gh.ledger().deletes.contains(token)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.daemon.log()));
    // And the trail says so, without the token.
    wait_until("the revocation recorded", Duration::from_secs(15), || {
        read_trail(d.daemon.state_dir()).is_ok_and(|t| {
            t.has(
                "vault.revoke",
                &[("github_tokens_revoked", serde_json::json!(1))],
            )
        })
    })
    .unwrap();
    let trail = read_trail(d.daemon.state_dir()).unwrap();
    let revoked = trail.one("vault.revoke", &[]);
    assert_eq!(revoked.params["ended"], "exited", "{revoked:?}");
    let reads = trail.matching("github.repo.read", &[]);
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads.iter().all(|r| verdict(r) == "allow"));
}

fn aws() -> AwsWorld {
    AwsWorld::start(S3_NAMES, AWS_POLICY).unwrap()
}

fn python_agent(a: &AwsWorld, agent: &str, args: &[&str]) -> Output {
    let script = workspace_root().join("tests/src/py/aws_agent.py");
    let mut cmd = agent_python().unwrap();
    cmd.push(script.display().to_string());
    cmd.extend(args.iter().map(|a| a.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    run(&a.d, agent, &cmd)
}

/// `aws ARGS` (the CLI from PyPI) as the agent `s3-cli`.
fn aws_cli(a: &AwsWorld, args: &[&str]) -> Output {
    let mut cmd = agent_python().unwrap();
    cmd.extend(
        [
            "-m",
            "awscli",
            "--region",
            "us-east-1",
            "--endpoint-url",
            "https://s3.amazonaws.com",
        ]
        .map(String::from),
    );
    cmd.extend(args.iter().map(|a| a.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    run(&a.d, "s3-cli", &cmd)
}

#[test]
fn boto3_and_the_aws_cli_use_s3_through_re_signing_and_delete_is_refused_by_policy() {
    require_root_or_skip!();
    let a = aws();
    let out = python_agent(&a, "s3-bot", &["work"]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        show(&out),
        a.d.daemon.log(),
        a.moto.log()
    );
    let v = json_of(&out);
    assert_eq!(
        v["key_prefix"], "ASIACRDN",
        "the agent holds placeholder keys: {v}"
    );
    assert_eq!(v["put"], "ok", "{v}");
    assert_eq!(v["list"], serde_json::json!(["report.txt"]), "{v}");
    assert_eq!(v["get"], "q3 numbers", "{v}");
    assert_eq!(v["delete"]["status"], 403, "{v}");
    assert_eq!(
        v["after_delete"], "q3 numbers",
        "the object is still there: {v}"
    );

    // The AWS CLI, another instance with its own placeholder.
    let listed = aws_cli(&a, &["s3api", "list-objects-v2", "--bucket", "docs"]);
    assert!(listed.status.success(), "{}", show(&listed));
    assert!(
        stdout(&listed).contains("\"Key\": \"report.txt\""),
        "{}",
        show(&listed)
    );
    let read = aws_cli(&a, &["s3", "cp", "s3://docs/report.txt", "-"]);
    assert!(read.status.success(), "{}", show(&read));
    assert_eq!(stdout(&read).trim(), "q3 numbers");

    let trail = read_trail(a.d.daemon.state_dir()).unwrap();
    for action in [
        "aws.s3.put_object",
        "aws.s3.list_objects_v2",
        "aws.s3.get_object",
    ] {
        let got = trail.matching(action, &[]);
        assert!(
            !got.is_empty() && got.iter().all(|r| verdict(r) == "allow"),
            "{action}: {got:?}"
        );
    }
    // Each instance's STS session was dropped when it exited, and recorded.
    wait_until("the sessions dropped", Duration::from_secs(15), || {
        read_trail(a.d.daemon.state_dir()).is_ok_and(|t| {
            t.matching(
                "vault.revoke",
                &[("aws_sessions_dropped", serde_json::json!(1))],
            )
            .len()
                == 3
        })
    })
    .unwrap();
    let deletes = trail.matching("aws.s3.delete_object", &[]);
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        (verdict(deletes[0]), rule(deletes[0])),
        ("deny", "no-deletes")
    );
    drop(a.net);
}

#[test]
fn an_altered_request_and_another_instances_placeholder_are_refused_and_audited() {
    require_root_or_skip!();
    let a = aws();
    let seeded = python_agent(&a, "s3-bot", &["work"]);
    assert!(seeded.status.success(), "{}", show(&seeded));

    let out = python_agent(&a, "s3-bot", &["tamper"]);
    assert!(out.status.success(), "{}", show(&out));
    let v = json_of(&out);
    assert_eq!(
        v["untouched"]["status"], 200,
        "the signed request as sent works: {v}"
    );
    assert_eq!(v["altered"]["status"], 403, "{v}");
    assert!(
        v["altered"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("altered after signing"),
        "{v}"
    );

    // Instance A stays up and prints its AWS variables; B is given them.
    let mut holder = agent_command(
        &a.d.daemon,
        "s3-holder",
        &["/bin/sh", "-c", "env; echo END-OF-ENV; sleep 30"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let a_env = first_lines_with(holder.stdout.take().unwrap(), "END-OF-ENV");
    let dir = world_writable_dir().unwrap();
    let env_file = dir.path().join("a.env");
    std::fs::write(&env_file, a_env).unwrap();
    set_readable(&env_file);
    let out = python_agent(&a, "s3-bot", &["as-other", env_file.to_str().unwrap()]);
    // Our own child, by its handle.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let v = json_of(&out);
    assert_eq!(v["list"]["status"], 403, "{v}");

    // A real AWS key (one Cordon did not issue) is a foreign credential.
    let real_file = dir.path().join("real.env");
    std::fs::write(
        &real_file,
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )
    .unwrap();
    set_readable(&real_file);
    let out = python_agent(&a, "s3-bot", &["as-other", real_file.to_str().unwrap()]);
    assert_eq!(json_of(&out)["list"]["status"], 403, "{}", show(&out));

    let trail = read_trail(a.d.daemon.state_dir()).unwrap();
    let foreign: Vec<_> = trail
        .records()
        .iter()
        .filter(|r| rule(r) == "credential" && format!("{r:?}").contains("AKIAIOSFODNN7EXAMPLE"))
        .collect();
    assert_eq!(foreign.len(), 1, "{foreign:?}");
    let refused: Vec<_> = trail
        .records()
        .iter()
        .filter(|r| rule(r) == "aws-signature")
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "the altered request and the replayed placeholder: {refused:?}"
    );
    assert!(refused.iter().all(|r| verdict(r) == "deny"));
    let reasons: Vec<String> = refused.iter().map(|r| format!("{r:?}")).collect();
    assert!(
        reasons.iter().any(|r| r.contains("altered after signing")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("another agent instance")),
        "{reasons:?}"
    );
}

/// Starts agent `name` calling the GitHub API once, then staying up.
fn gh_holder(d: &JitDaemon, name: &str) -> std::process::Child {
    let script = "curl -sS -o /dev/null -H \"Authorization: Bearer $GITHUB_TOKEN\" \
                  https://api.github.com/repos/acme/api; sleep 60";
    agent_command(&d.daemon, name, &["/bin/sh", "-c", script])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn revocation_of(d: &JitDaemon, agent: &str) -> Option<Value> {
    let trail = read_trail(d.daemon.state_dir()).ok()?;
    trail
        .matching("vault.revoke", &[])
        .into_iter()
        .find(|r| r.agent.as_deref() == Some(agent))
        .map(|r| r.params["ended"].clone())
}

#[test]
fn killing_or_terminating_an_agent_revokes_its_github_token_at_once() {
    require_root_or_skip!();
    let net = Net::new().unwrap();
    let (pem, public) = github::app_key().unwrap();
    let ip = IpAddr::V4(net.ns.v4_at(3));
    let gh = FakeGithub::start(&net.ns, &net.ca, ip, &["api.github.com"], public).unwrap();
    net.resolve(&["api.github.com"], ip);
    let d = JitDaemon::start(&net, GITHUB_POLICY, &gh.base_url(), UNUSED_ISSUER).unwrap();
    let set =
        vault_set_stdin(&d.daemon, "gh-app", "github-app", &github::entry_json(&pem)).unwrap();
    assert!(set.status.success(), "{}", show(&set));

    let mut killed = gh_holder(&d, "gh-killed");
    wait_until("the first token minted", Duration::from_secs(20), || {
        gh.ledger().tokens.len() == 1
    })
    .unwrap();
    let first = gh.ledger().tokens.keys().next().cloned().unwrap();
    let mut terminated = gh_holder(&d, "gh-terminated");
    wait_until("the second token minted", Duration::from_secs(20), || {
        gh.ledger().tokens.len() == 2
    })
    .unwrap();
    let second = gh
        .ledger()
        .tokens
        .keys()
        .find(|t| **t != first)
        .cloned()
        .unwrap();

    // Killed: frozen, not ended; its token is revoked all the same.
    let out = d.daemon.cordon(&["kill", "gh-killed"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    wait_until(
        "the killed agent's token revoked",
        Duration::from_secs(10),
        || gh.ledger().deletes.contains(&first),
    )
    .unwrap();
    assert!(
        !gh.ledger().deletes.contains(&second),
        "only the killed agent's token"
    );
    wait_until(
        "the kill's revocation recorded",
        Duration::from_secs(10),
        || revocation_of(&d, "gh-killed") == Some(Value::from("killed")),
    )
    .unwrap();

    let out = d.daemon.cordon(&["terminate", "gh-terminated"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    wait_until(
        "the terminated agent's token revoked",
        Duration::from_secs(10),
        || gh.ledger().deletes.contains(&second),
    )
    .unwrap();
    wait_until("the termination recorded", Duration::from_secs(10), || {
        revocation_of(&d, "gh-terminated") == Some(Value::from("terminated"))
    })
    .unwrap();

    let out = d.daemon.cordon(&["terminate", "gh-killed"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // Our own children, by their handles (ended by `cordon terminate`).
    for child in [&mut killed, &mut terminated] {
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
    assert_eq!(gh.ledger().deletes.len(), 2, "each token revoked once");
}

#[test]
fn a_running_agent_keeps_its_aws_placeholder_across_a_daemon_restart_and_kill_resume() {
    require_root_or_skip!();
    let mut a = aws();
    let dir = world_writable_dir().unwrap();
    let go = dir.path().join("go");
    let script = workspace_root().join("tests/src/py/aws_agent.py");
    let python = agent_python().unwrap().join(" ");
    // Up before the restart, signing only after it.
    let body = format!(
        "echo ready; while [ ! -e {go} ]; do sleep 0.1; done; {python} {script} work",
        go = go.display(),
        script = script.display()
    );
    let mut agent = agent_command(&a.d.daemon, "s3-long", &["/bin/sh", "-c", &body])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = agent.stdout.take().unwrap();
    let ready = first_lines_with_ref(&mut out, "ready");
    assert!(ready.contains("ready"), "{ready}");
    a.d.daemon.restart().unwrap();
    // A kill revokes its placeholder with everything else; resuming gives
    // the same keys back (checked after the restart, whose own restore
    // would otherwise hide a missing one).
    for op in ["kill", "resume"] {
        let out = a.d.daemon.cordon(&[op, "s3-long"]).unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    std::fs::write(&go, b"").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    // Our own child, by its handle.
    agent.wait().unwrap();
    let v: Value = rest
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from the agent: {rest}\n{}", a.d.daemon.log()));
    assert_eq!(v["list"], serde_json::json!(["report.txt"]), "{v}");
    assert_eq!(v["get"], "q3 numbers", "{v}");
}

/// Reads `out` up to the line containing `marker`, leaving the rest.
fn first_lines_with_ref(out: &mut std::process::ChildStdout, marker: &str) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while std::io::Read::read(out, &mut byte).unwrap_or(0) == 1 {
        seen.push(byte[0]);
        if byte[0] == b'\n' && String::from_utf8_lossy(&seen).contains(marker) {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// The agent's output, line by line, as it comes (a reader thread).
fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn cutting_the_github_connector_revokes_its_token_at_once_and_a_resume_mints_a_fresh_one() {
    require_root_or_skip!();
    let net = Net::new().unwrap();
    let (pem, public) = github::app_key().unwrap();
    let ip = IpAddr::V4(net.ns.v4_at(3));
    let gh = FakeGithub::start(&net.ns, &net.ca, ip, &["api.github.com"], public).unwrap();
    net.resolve(&["api.github.com"], ip);
    let d = JitDaemon::start(&net, GITHUB_POLICY, &gh.base_url(), UNUSED_ISSUER).unwrap();
    let set =
        vault_set_stdin(&d.daemon, "gh-app", "github-app", &github::entry_json(&pem)).unwrap();
    assert!(set.status.success(), "{}", show(&set));

    // One GitHub call per step, each when the test says go.
    let dir = world_writable_dir().unwrap();
    let script = format!(
        "for step in 1 2 3; do \
           while [ ! -e {dir}/go$step ]; do sleep 0.1; done; \
           curl -sS -o /dev/null -w \"step$step %{{http_code}}\\n\" \
             -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com/repos/acme/api; \
         done",
        dir = dir.path().display()
    );
    let mut agent = agent_command(&d.daemon, "gh-cut", &["/bin/sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(agent.stdout.take().unwrap());
    let step = |n: u32| -> String {
        std::fs::write(dir.path().join(format!("go{n}")), b"").unwrap();
        lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("step {n}: {e}\n{}", d.daemon.log()))
    };

    assert_eq!(step(1), "step1 200");
    let first = {
        let l = gh.ledger();
        assert_eq!(l.tokens.len(), 1, "{:?}", l.tokens);
        l.tokens.keys().next().cloned().unwrap()
    };

    let out = d
        .daemon
        .cordon(&[
            "kill",
            "gh-cut",
            "--connector",
            "github",
            "--reason",
            "leak",
        ])
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // Revoked before the command returned, not in the background.
    assert_eq!(
        gh.ledger().deletes,
        std::slice::from_ref(&first),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("1 GitHub tokens revoked (0 failed"),
        "{}",
        show(&out)
    );
    let trail = read_trail(d.daemon.state_dir()).unwrap();
    let revoked = trail.one("vault.revoke", &[("ended", Value::from("connector_cut"))]);
    assert_eq!(revoked.params["connector"], "github", "{revoked:?}");
    assert_eq!(revoked.params["github_tokens_revoked"], 1, "{revoked:?}");
    assert_eq!(revoked.agent.as_deref(), Some("gh-cut"));

    // Cut: refused by Cordon, and nothing minted for it.
    assert_eq!(step(2), "step2 403");
    assert_eq!(gh.ledger().tokens.len(), 1, "nothing minted while cut");

    let out = d
        .daemon
        .cordon(&["resume", "gh-cut", "--connector", "github"])
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(step(3), "step3 200");
    let (tokens, auth) = {
        let l = gh.ledger();
        (l.tokens.clone(), l.repo_auth.clone())
    };
    assert_eq!(
        tokens.len(),
        2,
        "a fresh token after the resume: {tokens:?}"
    );
    let second = tokens.keys().find(|t| **t != first).cloned().unwrap();
    assert_eq!(
        auth,
        [format!("Bearer {first}"), format!("Bearer {second}")],
        "the revoked token was never sent again"
    );
    // Our own child, by its handle: it ends after step 3.
    agent.wait().unwrap();
    wait_until(
        "the fresh token revoked at exit",
        Duration::from_secs(15),
        || gh.ledger().deletes.contains(&second),
    )
    .unwrap();
    assert_eq!(gh.ledger().deletes, [first, second], "each revoked once");
}
