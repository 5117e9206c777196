//! Learn mode end to end: a real agent in a real cgroup whose policy says `mode = "learn"`.
//! What the policy would deny reaches the upstream and the trail says which rule would have
//! fired; the kill switch still freezes the agent; `cordon policy suggest` turns the trail into
//! a policy that `cordon policy check` accepts and that, applied, enforces again. A credential
//! the agent's binding does not allow never reaches the upstream, learning or not.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cordon_audit::{AuditRecord, Would};
use cordon_e2e::agent_cgroup::RunningAgent;
use cordon_e2e::operator::ps;
use cordon_e2e::secrets::{assert_no_leak, github_token, store};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{PYTHON, show, stdout};
use cordon_e2e::{World, cordon_bin, require_root_or_skip, wait_until};

const POLICY: &str = r#"
agents = ["learner"]
mode = "learn"
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "never delete branches"

# The GitHub token is for reads only.
[[credentials.github]]
entry = "gh-learner"
when = 'action.endsWith(".read")'
"#;

const CURL: &str = "/usr/bin/curl -sS -o /dev/null -w '%{http_code}\\n' --max-time 10";
const T: Duration = Duration::from_secs(15);

/// `python3 -c LOOP`: plain-HTTP fetches of `/loop/<i>` every 100 ms, forever.
const LOOP: &str = r#"
import time, urllib.request
i = 0
while True:
    try:
        urllib.request.urlopen("http://allowed.test/loop/%d" % i, timeout=2).read()
    except Exception:
        pass
    i += 1
    time.sleep(0.1)
"#;

fn sh(w: &World, script: &str) -> Output {
    w.run("learner", &["/bin/sh", "-c", script]).unwrap()
}

/// A branch delete the policy denies, then a plain fetch its default denies: their statuses.
fn delete_then_fetch(w: &World) -> Output {
    sh(
        w,
        &format!(
            "{CURL} -X DELETE https://api.github.com/repos/o/r/git/refs/heads/feature; \
             {CURL} http://allowed.test/learn/1"
        ),
    )
}

fn cordon_ok(w: &World, args: &[&str]) -> String {
    let out = w.daemon.cordon(args).unwrap();
    assert!(out.status.success(), "cordon {args:?}: {}", show(&out));
    stdout(&out)
}

fn hits(w: &World, prefix: &str) -> usize {
    w.http
        .received()
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .count()
}

fn decision_of<'a>(records: &'a [AuditRecord], action: &str) -> &'a AuditRecord {
    records
        .iter()
        .find(|r| r.kind.as_str() == "request" && r.action.as_deref() == Some(action))
        .unwrap_or_else(|| panic!("no decision for {action}"))
}

#[test]
fn a_learning_agent_reaches_what_policy_denies_is_still_killed_and_its_trail_becomes_a_policy() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    store(&w.daemon, "gh-learner", &github_token()).unwrap();

    let out = delete_then_fetch(&w);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["200", "200"],
        "{}",
        show(&out)
    );
    let deletes = w
        .https
        .received()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path == "/repos/o/r/git/refs/heads/feature")
        .count();
    assert_eq!(deletes, 1, "the denied delete did not reach the upstream");
    assert_eq!(hits(&w, "/learn/"), 1);

    let trail = w.trail().unwrap();
    let delete = decision_of(trail.records(), "github.branch.delete");
    assert_eq!(verdict(delete), "allow");
    assert_eq!(delete.would, Some(Would::Deny));
    assert_eq!(rule(delete), "no-branch-delete");
    assert_eq!(
        delete.reason.as_deref(),
        Some("learn mode, would deny: never delete branches")
    );
    let fetch = decision_of(trail.records(), "http.request");
    assert_eq!(
        (fetch.would, rule(fetch)),
        (Some(Would::Deny), "default:e2e.toml")
    );
    let dns = trail
        .records()
        .iter()
        .find(|r| r.action.as_deref() == Some("dns.query"))
        .expect("a dns.query decision");
    assert_eq!(dns.would, None, "an allowed action carries no `would`");

    // The kill switch still cuts a learning agent, and ps says loudly that it learns.
    let child = w
        .agent("learner", &[PYTHON, "-c", LOOP])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut agent = RunningAgent::new(child);
    wait_until("the looping agent's requests", T, || {
        hits(&w, "/loop/") >= 3
    })
    .unwrap();
    let rows = ps(&w.daemon).unwrap();
    let row = rows
        .iter()
        .find(|r| r.agent == "learner")
        .expect("learner in ps");
    assert_eq!(row.mode, "LEARN", "{rows:?}");
    cordon_ok(&w, &["kill", "learner", "--reason", "learn e2e"]);
    let at_kill = hits(&w, "/loop/");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        hits(&w, "/loop/"),
        at_kill,
        "a killed learning agent still reached the upstream"
    );
    assert!(
        ps(&w.daemon)
            .unwrap()
            .iter()
            .any(|r| r.agent == "learner" && r.state == "killed"),
        "learner not killed"
    );
    cordon_ok(&w, &["terminate", "learner"]);
    agent
        .wait(T)
        .unwrap()
        .expect("the agent outlived terminate");
    cordon_ok(&w, &["resume", "learner"]);

    // The proposal from the daemon's trail, and from an exported file: the same bytes.
    let policies = w.policies.path();
    let policies = policies.to_str().unwrap();
    let proposal = cordon_ok(
        &w,
        &[
            "policy",
            "suggest",
            "--agent",
            "learner",
            "--policies",
            policies,
        ],
    );
    let exported = tempfile::NamedTempFile::new().unwrap();
    let export = cordon_ok(&w, &["audit", "export"]);
    std::fs::write(exported.path(), export).unwrap();
    let from_file = cordon_ok(
        &w,
        &[
            "policy",
            "suggest",
            "--agent",
            "learner",
            "--from-audit",
            exported.path().to_str().unwrap(),
            "--policies",
            policies,
        ],
    );
    assert_eq!(proposal, from_file);
    assert!(
        proposal.contains("action = \"github.branch.delete\""),
        "{proposal}"
    );
    assert!(
        proposal.contains("# NEW ACCESS: today denied by rule `no-branch-delete` (1 of 1)."),
        "{proposal}"
    );
    assert!(
        proposal.contains("hosts = [\"allowed.test\"]"),
        "{proposal}"
    );

    let alone = tempfile::tempdir().unwrap();
    std::fs::write(alone.path().join("learned.toml"), &proposal).unwrap();
    let check = Command::new(cordon_bin())
        .args(["policy", "check"])
        .arg(alone.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "policy check: {}\n{proposal}",
        show(&check)
    );
    assert!(
        stdout(&check).contains(": ok, version "),
        "{}",
        show(&check)
    );

    // Applied beside the learning policy, the agent is enforced again: the branch delete is
    // refused (a deny rule beats the learned allow) while the learned fetch is allowed.
    w.policies.write("learned.toml", &proposal).unwrap();
    cordon_ok(&w, &["policy", "reload"]);
    let out = delete_then_fetch(&w);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["403", "200"],
        "{}\n{proposal}",
        show(&out)
    );
    let deletes_after = w
        .https
        .received()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes_after, 1, "the enforced delete reached the upstream");
}

#[test]
fn a_learning_agent_never_gets_a_credential_its_binding_does_not_allow() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let token = github_token();
    store(&w.daemon, "gh-learner", &token).unwrap();

    // The same placeholder on a read (bound) and on a delete (not bound, and denied by policy,
    // so learn mode lets it through): only the read may carry the real token.
    let out = sh(
        &w,
        &format!(
            "{CURL} -H \"Authorization: Bearer $GITHUB_TOKEN\" \
               https://api.github.com/repos/o/r/issues/1; \
             {CURL} -X DELETE -H \"Authorization: Bearer $GITHUB_TOKEN\" \
               https://api.github.com/repos/o/r/git/refs/heads/feature; \
             {CURL} -X DELETE -H \"Authorization: token $GH_TOKEN\" \
               https://api.github.com/repos/o/r/git/refs/heads/other"
        ),
    );
    let received = w.https.received();
    let auth = |method: &str, path: &str| -> Vec<Option<String>> {
        received
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .map(|r| r.header("authorization").map(str::to_owned))
            .collect()
    };
    assert_eq!(
        auth("GET", "/repos/o/r/issues/1"),
        [Some(format!("Bearer {token}"))],
        "the bound read lost its credential: {}",
        show(&out)
    );
    let deletes = auth("DELETE", "/repos/o/r/git/refs/heads/");
    assert_eq!(
        deletes.len(),
        2,
        "learn mode should forward both deletes: {}",
        show(&out)
    );
    for seen in deletes.iter().flatten() {
        assert_no_leak(
            "a delete's Authorization at the upstream",
            seen.as_bytes(),
            &[&token],
        );
    }
    for r in received.iter().filter(|r| r.method == "DELETE") {
        for (name, value) in &r.headers {
            assert_no_leak(
                &format!("header {name} of a delete"),
                value.as_bytes(),
                &[&token],
            );
        }
        assert_no_leak("a delete's body", &r.body, &[&token]);
    }
    let trail = w.trail().unwrap();
    let delete = decision_of(trail.records(), "github.branch.delete");
    assert_eq!(delete.would, Some(Would::Deny), "{trail}");
}
