//! git push read per ref, against packs and requests made by the real `git` client: every
//! push goes to a real `git http-backend` through a recording server, and the recorded
//! receive-pack body must read as exactly the ref updates that happened.

mod git_server;

use cordon_connectors::git::{
    PackLimits, PackStop, Push, RefRefusal, parse_commands, parse_push, refusal_body,
};
use git_server::{GitServer, Mode, git, git_ok};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;

struct Fixture {
    _tmp: TempDir,
    work: std::path::PathBuf,
    server: GitServer,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("srv");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&root, &["init", "-q", "--bare", "r.git"]);
    git_ok(&root.join("r.git"), &["config", "http.receivepack", "true"]);
    let server = GitServer::start(&root);
    git_ok(&work, &["init", "-q"]);
    git_ok(&work, &["remote", "add", "origin", &server.url("r.git")]);
    Fixture {
        _tmp: tmp,
        work,
        server,
    }
}

fn commit(work: &Path, file: &str, text: &str) -> String {
    std::fs::write(work.join(file), text).unwrap();
    git_ok(work, &["add", file]);
    git_ok(work, &["commit", "-q", "-m", &format!("edit {file}")]);
    git_ok(work, &["rev-parse", "HEAD"])
}

/// Push with `args`, require success, and parse the one receive-pack body git sent.
fn push(f: &Fixture, args: &[&str]) -> Push {
    let mut full = vec!["push", "-q", "origin"];
    full.extend_from_slice(args);
    git_ok(&f.work, &full);
    let mut bodies = f.server.take_pushes();
    assert_eq!(bodies.len(), 1, "one receive-pack POST per push");
    parse_push(&bodies.remove(0), &PackLimits::default()).expect("git's push parses")
}

fn params(p: &Push, i: usize) -> Value {
    Value::Object(p.updates[i].params())
}

const ZERO: &str = "0000000000000000000000000000000000000000";

#[test]
fn creating_a_branch_is_not_a_force_push() {
    let f = fixture();
    let a = commit(&f.work, "a", "1");
    let p = push(&f, &["main"]);
    assert_eq!(
        params(&p, 0),
        json!({"ref":"refs/heads/main","branch":"main","tag":"","old":ZERO,"new":a,
               "create":true,"delete":false,"force":false})
    );
    assert!(p.commands.capabilities.report_status || p.commands.capabilities.report_status_v2);
    assert_eq!(p.pack, PackStop::Complete);
}

#[test]
fn a_fast_forward_is_proven_from_the_pack() {
    let f = fixture();
    let a = commit(&f.work, "a", "1");
    push(&f, &["main"]);
    commit(&f.work, "a", "2");
    let c = commit(&f.work, "b", "3");
    let p = push(&f, &["main"]);
    assert_eq!(p.updates.len(), 1);
    let got = params(&p, 0);
    assert_eq!(got["old"], json!(a));
    assert_eq!(got["new"], json!(c));
    assert_eq!(got["force"], json!(false), "{got}");
    assert_eq!(got["create"], json!(false));
    // Both new commits came in the pack; the old one did not.
    assert_eq!(p.commits.parents.len(), 2);
}

#[test]
fn a_rewritten_branch_is_a_force_push() {
    let f = fixture();
    let a = commit(&f.work, "a", "1");
    push(&f, &["main"]);
    let b = commit(&f.work, "a", "2");
    push(&f, &["main"]);
    git_ok(&f.work, &["reset", "-q", "--hard", &a]);
    let d = commit(&f.work, "a", "other");
    let p = push(&f, &["--force", "main"]);
    let got = params(&p, 0);
    assert_eq!(
        (got["old"].clone(), got["new"].clone()),
        (json!(b), json!(d))
    );
    assert_eq!(got["force"], json!(true), "{got}");
}

#[test]
fn deleting_a_branch_sends_no_pack_and_says_delete() {
    let f = fixture();
    commit(&f.work, "a", "1");
    push(&f, &["main"]);
    git_ok(&f.work, &["branch", "feature"]);
    push(&f, &["feature"]);
    let p = push(&f, &[":feature"]);
    let got = params(&p, 0);
    assert_eq!(got["ref"], json!("refs/heads/feature"));
    assert_eq!(got["new"], json!(ZERO));
    assert_eq!(got["delete"], json!(true));
    assert_eq!(got["force"], json!(false));
    assert_eq!(p.pack, PackStop::NoPack);
}

#[test]
fn tags_and_several_refs_in_one_push_give_one_update_each() {
    let f = fixture();
    commit(&f.work, "a", "1");
    push(&f, &["main"]);
    commit(&f.work, "a", "2");
    git_ok(&f.work, &["tag", "v1"]);
    git_ok(&f.work, &["tag", "-a", "v2", "-m", "release"]);
    git_ok(&f.work, &["branch", "dev"]);
    let p = push(&f, &["main", "dev", "v1", "v2"]);
    let mut refs: Vec<(String, String, String, bool)> = (0..p.updates.len())
        .map(|i| {
            let v = params(&p, i);
            (
                v["ref"].as_str().unwrap().to_string(),
                v["branch"].as_str().unwrap().to_string(),
                v["tag"].as_str().unwrap().to_string(),
                v["force"].as_bool().unwrap(),
            )
        })
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        vec![
            ("refs/heads/dev".into(), "dev".into(), "".into(), false),
            ("refs/heads/main".into(), "main".into(), "".into(), false),
            ("refs/tags/v1".into(), "".into(), "v1".into(), false),
            ("refs/tags/v2".into(), "".into(), "v2".into(), false),
        ]
    );
}

#[test]
fn deltified_commits_are_rebuilt_to_prove_a_fast_forward() {
    let f = fixture();
    let a = commit(&f.work, "a", "1");
    push(&f, &["main"]);
    // Long, nearly equal commit messages make pack-objects store commits as deltas.
    let long: String = (0..400)
        .map(|i| format!("line {i} of a long message\n"))
        .collect();
    for i in 0..6 {
        std::fs::write(f.work.join("a"), format!("v{i}")).unwrap();
        git_ok(
            &f.work,
            &["commit", "-q", "-a", "-m", &format!("{long}\nchange {i}")],
        );
    }
    let head = git_ok(&f.work, &["rev-parse", "HEAD"]);
    let p = push(&f, &["main"]);
    assert!(
        p.commits.resolved_deltas > 0,
        "git sent no deltified commit; the test proves nothing"
    );
    assert_eq!(p.commits.unresolved_deltas, 0);
    let got = params(&p, 0);
    assert_eq!(
        (got["old"].clone(), got["new"].clone()),
        (json!(a), json!(head))
    );
    assert_eq!(got["force"], json!(false), "{got}");
}

#[test]
fn a_pack_cut_short_or_over_a_limit_proves_nothing() {
    let f = fixture();
    commit(&f.work, "a", "1");
    push(&f, &["main"]);
    for i in 0..3 {
        commit(&f.work, "a", &format!("{i}"));
    }
    git_ok(&f.work, &["push", "-q", "origin", "main"]);
    let body = f.server.take_pushes().remove(0);
    let whole = parse_push(&body, &PackLimits::default()).unwrap();
    assert!(!whole.updates[0].force);
    // The command list alone: every ref is still there, but nothing is proven.
    let head = parse_commands(&body).unwrap();
    let cut = parse_push(&body[..head.pack_offset + 20], &PackLimits::default()).unwrap();
    assert_eq!(cut.pack, PackStop::Truncated);
    assert!(cut.updates[0].force);
    let tiny = PackLimits {
        max_inflated: 10,
        ..PackLimits::default()
    };
    let limited = parse_push(&body, &tiny).unwrap();
    assert_eq!(limited.pack, PackStop::LimitReached);
    assert!(limited.updates[0].force);
    let few = PackLimits {
        max_objects: 1,
        ..PackLimits::default()
    };
    assert!(parse_push(&body, &few).unwrap().updates[0].force);
}

#[test]
fn git_prints_the_policy_reason_of_a_refused_push() {
    let f = fixture();
    let a = commit(&f.work, "a", "1");
    push(&f, &["main"]);
    commit(&f.work, "a", "2");
    f.server.set_mode(Mode::Refuse(Arc::new(|body: &[u8]| {
        let cmds = parse_commands(body).unwrap();
        assert!(
            cmds.capabilities.side_band_64k,
            "git negotiates side-band-64k"
        );
        let refused = [RefRefusal {
            refname: "refs/heads/main".into(),
            reason: "denied by policy: never push to main".into(),
        }];
        refusal_body(
            &cmds,
            &refused,
            "push refused: another ref was denied by policy",
        )
    })));
    let out = git(&f.work, &["push", "origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[remote rejected] main -> main (denied by policy: never push to main)"),
        "{stderr}"
    );
    // Nothing reached the repository.
    let server_main = git_ok(&f.server.root.join("r.git"), &["rev-parse", "main"]);
    assert_eq!(server_main, a);
}

#[test]
fn git_prints_the_reason_when_side_band_was_not_negotiated() {
    let f = fixture();
    commit(&f.work, "a", "1");
    *f.server.no_side_band.lock().unwrap() = true;
    f.server.set_mode(Mode::Refuse(Arc::new(|body: &[u8]| {
        let cmds = parse_commands(body).unwrap();
        assert!(
            !cmds.capabilities.side_band_64k,
            "the client still asked for side-band"
        );
        let refused = [RefRefusal {
            refname: "refs/heads/main".into(),
            reason: "denied by policy: no new branches".into(),
        }];
        refusal_body(&cmds, &refused, "refused")
    })));
    let out = git(&f.work, &["push", "origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[remote rejected] main -> main (denied by policy: no new branches)"),
        "{stderr}"
    );
}
