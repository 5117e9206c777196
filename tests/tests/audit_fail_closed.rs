//! Security records are never dropped (issue 14), against a real daemon whose storage is made
//! to fail: a granted approval whose record cannot be written is refused (503) and never reaches
//! the upstream; `cordon kill` / `resume` fail when their record or kill mark cannot be written,
//! while the kill itself stays in force; `kill --connector` is in the audit trail.
//!
//! The audit log is broken the way a full disk breaks it, for root too: the daemon's write-ahead
//! log is moved onto a small tmpfs (a symlink at `STATE/audit.wal`), then emptied and the tmpfs
//! filled, so the writer's next `pwrite` needs a page the filesystem does not have (ENOSPC).
//! The kill marks are broken by putting a directory where `STATE/kills.json` is renamed to.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cordon_e2e::agent_cgroup::{RunningAgent, is_frozen};
use cordon_e2e::full_disk::FullDisk;
use cordon_e2e::operator::{Background, wait_for_pending};
use cordon_e2e::world::show;
use cordon_e2e::{World, require_root_or_skip};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "issue-approval"
action = "github.issue.create"
decision = "approve"
approval_timeout = "30s"
"#;

const T: Duration = Duration::from_secs(10);

fn spawn_sleeper(w: &World, name: &str) -> (RunningAgent, PathBuf) {
    let child = w
        .agent(name, &["/bin/sleep", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent = RunningAgent::new(child);
    let parent = PathBuf::from(w.status().unwrap()["cgroup_parent"].as_str().unwrap());
    let cg = agent.instance_cgroup(&parent).unwrap();
    (agent, cg)
}

/// `cordon ARGS`, expected to fail: its stderr.
fn cordon_fails(w: &World, args: &[&str]) -> String {
    let out = w.daemon.cordon(args).unwrap();
    assert!(
        !out.status.success(),
        "cordon {args:?} succeeded: {}",
        show(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn issue_create(w: &World) -> Background {
    let cmd = [
        "/usr/bin/curl",
        "-sS",
        "--max-time",
        "40",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"title":"unrecorded"}"#,
        "https://api.github.com/repos/o/r/issues",
    ];
    Background::start(w.agent("asker", &cmd), Duration::from_secs(60))
}

#[test]
fn an_approval_granted_while_the_audit_log_fails_is_refused_and_not_forwarded() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let disk = FullDisk::under(&mut w).unwrap();
    let (_sleeper, cg) = spawn_sleeper(&w, "sleeper");
    let asker = issue_create(&w);
    let p = wait_for_pending(&w.daemon, "github.issue.create", T).unwrap();

    disk.fill().unwrap();
    let out = w.daemon.cordon(&["approve", &p.id]).unwrap();
    assert!(out.status.success(), "approve: {}", show(&out));
    let out = asker.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    assert_eq!(code.trim(), "503", "{}", show(&out));
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(
        (&v["error"], &v["rule"]),
        (&json!("audit unavailable"), &json!("audit-unavailable")),
        "{v}"
    );
    assert!(
        w.https.received().iter().all(|r| r.method != "POST"),
        "the unrecorded grant was forwarded: {:?}",
        w.https.received()
    );
    assert!(
        w.daemon.log().contains("approval.granted asker"),
        "the failed record is not named in the error log:\n{}",
        w.daemon.log()
    );

    // A kill that cannot be audited is reported as a failure, and is in force all the same.
    let err = cordon_fails(&w, &["kill", "sleeper", "--reason", "e2e"]);
    assert!(
        err.contains("sleeper is killed") && err.contains("audit record could not be written"),
        "{err}"
    );
    assert!(is_frozen(&cg).unwrap(), "the unaudited kill did not freeze");
    // A resume that cannot be audited does not happen.
    let err = cordon_fails(&w, &["resume", "sleeper"]);
    assert!(err.contains("was not resumed"), "{err}");
    assert!(
        is_frozen(&cg).unwrap(),
        "an unaudited resume thawed the agent"
    );

    disk.free().unwrap();
    let _ = w.daemon.cordon(&["terminate", "sleeper"]);
}

#[test]
fn kill_fails_when_its_mark_cannot_be_written_and_the_agent_stays_killed() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let (_sleeper, cg) = spawn_sleeper(&w, "sleeper");

    // kill --connector is recorded as an agent.kill naming the connector, resume as agent.resume.
    let out = w
        .daemon
        .cordon(&[
            "kill",
            "sleeper",
            "--connector",
            "github",
            "--reason",
            "e2e",
        ])
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let out = w
        .daemon
        .cordon(&["resume", "sleeper", "--connector", "github"])
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let t = w.trail().unwrap();
    let of_connector = |kind: &str| {
        t.records()
            .iter()
            .filter(|r| {
                r.kind.as_str() == kind
                    && r.agent.as_deref() == Some("sleeper")
                    && r.connector.as_deref() == Some("github")
            })
            .count()
    };
    assert_eq!(
        (of_connector("agent.kill"), of_connector("agent.resume")),
        (1, 1),
        "{t}"
    );

    // The marks file is replaced by renaming onto it: a directory there fails that, for root too.
    let marks = w.daemon.state_dir().join("kills.json");
    let _ = std::fs::remove_file(&marks);
    std::fs::create_dir(&marks).unwrap();
    let err = cordon_fails(&w, &["kill", "sleeper", "--reason", "e2e"]);
    assert!(
        err.contains("sleeper is killed") && err.contains("kill mark could not be persisted"),
        "{err}"
    );
    assert!(
        is_frozen(&cg).unwrap(),
        "the unpersisted kill did not freeze"
    );
    let err = cordon_fails(&w, &["kill", "sleeper", "--connector", "stripe"]);
    assert!(err.contains("connector stripe is cut for sleeper"), "{err}");

    std::fs::remove_dir(&marks).unwrap();
    let _ = w.daemon.cordon(&["terminate", "sleeper"]);
}

/// A new policy changes what every agent may do, and a vault change what it
/// may reach: neither happens while its record cannot be written.
#[test]
fn policy_reloads_and_vault_changes_wait_for_their_records() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let disk = FullDisk::under(&mut w).unwrap();
    let before = w.status().unwrap()["policy_version"].clone();
    w.policies
        .write("open.toml", "agents = [\"*\"]\ndefault = \"allow\"\n")
        .unwrap();
    disk.fill().unwrap();

    let err = cordon_fails(&w, &["policy", "reload"]);
    assert!(err.contains("audit record could not be written"), "{err}");
    assert_eq!(
        w.status().unwrap()["policy_version"],
        before,
        "the policy changed without a record"
    );

    let mut set = w
        .daemon
        .cordon_command(&["vault", "set", "gh", "--from-stdin"]);
    set.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = set.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"token-value")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "vault set went through: {}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit record could not be written"),
        "{}",
        show(&out)
    );
    let list = w.daemon.cordon(&["vault", "list"]).unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("gh"),
        "the secret was stored without a record: {}",
        show(&list)
    );
}
