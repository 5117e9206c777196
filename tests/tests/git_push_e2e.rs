//! git pushes decided ref by ref, end to end: the real `git` inside an agent pushes through
//! Cordon to `git http-backend`. A push to a feature branch (created, then fast-forwarded)
//! lands; a push to main, a branch deletion by push and a force-push are refused as a whole in
//! git's own report-status format, so git prints the policy's reason, and the server's refs do
//! not move. The trail holds one decision per ref with what Cordon read from the push.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{show, world_writable_dir};
use cordon_e2e::{World, require_root_or_skip};
use serde_json::json;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "git-read"
action = "git.fetch"
decision = "allow"

[[rule]]
id = "git-push-advertise"
action = "git.push.advertise"
decision = "allow"

[[rule]]
id = "git-push"
action = "git.push"
decision = "allow"

[[rule]]
id = "no-push-main"
action = "git.push"
when = 'params.branch == "main"'
decision = "deny"
reason = "never push to main"

[[rule]]
id = "no-delete-by-push"
action = "git.push"
when = "params.delete"
decision = "deny"
reason = "never delete a branch by push"

[[rule]]
id = "no-force-push"
action = "git.push"
when = "params.force"
decision = "deny"
reason = "never force-push"
"#;

const REPO: &str = "team/proj";
const AGENT: &str = "coder";

/// Runs `script` with `sh` as the agent in `dir` (its working directory, where it may write).
fn sh(w: &World, dir: &Path, script: &str) -> Output {
    let mut cmd = w.agent(AGENT, &["/bin/sh", "-c", script]);
    cmd.current_dir(dir);
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
    cordon_e2e::run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap()
}

fn ok(w: &World, dir: &Path, script: &str) -> Output {
    let out = sh(w, dir, script);
    assert!(out.status.success(), "{script}\n{}", show(&out));
    out
}

/// The push fails, git names the ref as rejected with `reason`, and nothing moved.
fn refused(w: &World, dir: &Path, script: &str, reason: &str) {
    let before = (
        w.git.rev(REPO, "refs/heads/main").unwrap(),
        w.git.rev(REPO, "refs/heads/feature").unwrap(),
    );
    let out = sh(w, dir, script);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{script} succeeded\n{}", show(&out));
    assert!(
        err.contains("[remote rejected]") && err.contains(&format!("denied by policy: {reason}")),
        "{script}: git did not print the reason\n{}",
        show(&out)
    );
    let after = (
        w.git.rev(REPO, "refs/heads/main").unwrap(),
        w.git.rev(REPO, "refs/heads/feature").unwrap(),
    );
    assert_eq!(before, after, "{script}: a ref moved on the server");
}

fn head(w: &World, dir: &Path) -> String {
    let out = ok(w, dir, "git -C proj rev-parse HEAD");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn pushes_are_decided_per_ref_and_refused_in_gits_own_words() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    w.git.create_repo(REPO).unwrap();
    let work = world_writable_dir().unwrap();
    let dir = work.path();
    ok(
        &w,
        dir,
        "git clone -q https://git.test/team/proj.git proj && cd proj && git checkout -q -b feature \
         && echo one > one.txt && git add one.txt && git commit -q -m one && git push -q origin feature",
    );
    let created = head(&w, dir);
    assert_eq!(
        w.git.rev(REPO, "refs/heads/feature").unwrap().as_deref(),
        Some(created.as_str())
    );
    ok(
        &w,
        dir,
        "cd proj && echo two > two.txt && git add two.txt && git commit -q -m two && git push -q origin feature",
    );
    let forward = head(&w, dir);
    assert_eq!(
        w.git.rev(REPO, "refs/heads/feature").unwrap().as_deref(),
        Some(forward.as_str())
    );
    let main_before = w.git.rev(REPO, "refs/heads/main").unwrap().unwrap();

    refused(
        &w,
        dir,
        "cd proj && git push origin feature:main",
        "never push to main",
    );
    refused(
        &w,
        dir,
        "cd proj && git commit -q --amend -m rewritten && git push -f origin feature",
        "never force-push",
    );
    refused(
        &w,
        dir,
        "cd proj && git push origin --delete feature",
        "never delete a branch by push",
    );
    // A push of two refs where one is denied: neither lands, both are reported.
    let out = sh(
        &w,
        dir,
        "cd proj && git reset -q --hard origin/feature && git checkout -q -b other \
         && git push origin other feature:main",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        err.contains("push refused: another ref was denied by policy"),
        "{}",
        show(&out)
    );
    assert_eq!(w.git.rev(REPO, "refs/heads/other").unwrap(), None);
    assert_eq!(
        w.git.rev(REPO, "refs/heads/main").unwrap().as_deref(),
        Some(main_before.as_str())
    );

    let t = w.trail().unwrap().of_chain(AGENT);
    let on = |branch: &str, extra: &[(&str, serde_json::Value)]| {
        let mut p = vec![
            ("host", json!("git.test")),
            ("repo", json!(REPO)),
            ("branch", json!(branch)),
        ];
        p.extend(extra.iter().cloned());
        t.matching("git.push", &p)
    };
    let create = on(
        "feature",
        &[("create", json!(true)), ("new", json!(created))],
    );
    assert_eq!(create.len(), 1, "{t}");
    assert_eq!((verdict(create[0]), rule(create[0])), ("allow", "git-push"));
    assert_eq!(create[0].params["force"], json!(false), "{t}");
    let ff = on(
        "feature",
        &[("new", json!(forward)), ("old", json!(created))],
    );
    assert_eq!(ff.len(), 1, "{t}");
    assert_eq!(
        (verdict(ff[0]), ff[0].params["force"].clone()),
        ("allow", json!(false)),
        "a fast-forward is proven from the pack:\n{t}"
    );
    let to_main = on("main", &[]);
    assert!(
        !to_main.is_empty()
            && to_main
                .iter()
                .all(|r| (verdict(r), rule(r)) == ("deny", "no-push-main")),
        "{t}"
    );
    let forced = on("feature", &[("force", json!(true))]);
    assert_eq!(forced.len(), 1, "{t}");
    assert_eq!(
        (verdict(forced[0]), rule(forced[0])),
        ("deny", "no-force-push")
    );
    let deleted = on("feature", &[("delete", json!(true))]);
    assert_eq!(deleted.len(), 1, "{t}");
    assert_eq!(
        (verdict(deleted[0]), rule(deleted[0])),
        ("deny", "no-delete-by-push")
    );
}
