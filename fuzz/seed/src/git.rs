//! receive-pack request bodies as git sends them: a command list in
//! pkt-lines, then a pack made by `git pack-objects` (a new branch, and a
//! fast-forward with a thin pack). Empty when git is not installed.
use std::{path::Path, process::Command};

fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "seed")
        .env("GIT_AUTHOR_EMAIL", "seed@example.test")
        .env("GIT_COMMITTER_NAME", "seed")
        .env("GIT_COMMITTER_EMAIL", "seed@example.test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(stdin.unwrap_or_default())
        .ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}

fn pkt(line: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", line.len() + 4).into_bytes();
    out.extend_from_slice(line.as_bytes());
    out
}

fn body(old: &str, new: &str, refname: &str, pack: &[u8]) -> Vec<u8> {
    let mut out = pkt(&format!(
        "{old} {new} {refname}\0report-status side-band-64k object-format=sha1 agent=git/2\n"
    ));
    out.extend_from_slice(b"0000");
    out.extend_from_slice(pack);
    out
}

pub fn pushes(scratch: &Path) -> Vec<Vec<u8>> {
    let dir = scratch.join("git-seed");
    let _fresh = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the scratch repository");
    let zero = "0".repeat(40);
    let steps = || -> Option<Vec<Vec<u8>>> {
        git(&dir, &["init", "-q", "-b", "main"], None)?;
        std::fs::write(dir.join("a.txt"), "one\n").ok()?;
        git(&dir, &["add", "."], None)?;
        git(&dir, &["commit", "-q", "-m", "one"], None)?;
        let first = String::from_utf8(git(&dir, &["rev-parse", "HEAD"], None)?).ok()?;
        let first = first.trim().to_string();
        let all = git(
            &dir,
            &["pack-objects", "--stdout", "--revs"],
            Some(b"HEAD\n"),
        )?;
        std::fs::write(dir.join("a.txt"), "one\ntwo\n").ok()?;
        git(&dir, &["commit", "-q", "-am", "two"], None)?;
        let second = String::from_utf8(git(&dir, &["rev-parse", "HEAD"], None)?).ok()?;
        let second = second.trim().to_string();
        let thin = git(
            &dir,
            &["pack-objects", "--stdout", "--revs", "--thin"],
            Some(format!("HEAD\n^{first}\n").as_bytes()),
        )?;
        Some(vec![
            body(&zero, &first, "refs/heads/main", &all),
            body(&first, &second, "refs/heads/main", &thin),
            body(&second, &first, "refs/heads/main", &[]),
            body(&first, &zero, "refs/tags/v1", &[]),
        ])
    };
    steps().unwrap_or_default()
}
