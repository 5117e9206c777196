//! git smart-HTTP over HTTPS with the system git.

use super::*;

#[test]
fn git_clone_and_push_over_https_smart_http() {
    require_root_or_skip!();
    let ns = NetNs::new().unwrap();
    let ca = TestCa::new().unwrap();
    let git_srv = GitServer::start(&ns, &ca, &["github.com", "git.test"]).unwrap();
    git_srv.create_repo("demo").unwrap();
    let work = tempfile::tempdir().unwrap();
    let clone_dir = work.path().join("demo");
    let clone = clone_dir.to_str().unwrap();
    let git = |args: &[&str]| {
        let mut cmd = hermetic_git();
        cmd.env("GIT_SSL_CAINFO", ca.pem_path())
            .arg("-c")
            .arg(format!("http.curloptResolve=git.test:443:{}", ns.v4_at(1)))
            .args(args);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["clone", "-q", "https://git.test/demo.git", clone]);
    assert_eq!(
        std::fs::read_to_string(clone_dir.join("README")).unwrap(),
        "demo\n"
    );

    std::fs::write(clone_dir.join("change.txt"), "pushed\n").unwrap();
    git(&["-C", clone, "add", "change.txt"]);
    git(&["-C", clone, "commit", "-q", "-m", "change"]);
    git(&[
        "-C",
        clone,
        "push",
        "-q",
        "origin",
        "main",
        "main:refs/heads/feature",
    ]);
    let head = git(&["-C", clone, "rev-parse", "HEAD"]);
    assert_eq!(
        git_srv.rev("demo", "refs/heads/main").unwrap().as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        git_srv
            .rev("demo", "refs/heads/feature")
            .unwrap()
            .as_deref(),
        Some(head.as_str())
    );
    assert_eq!(git_srv.rev("demo", "refs/heads/nope").unwrap(), None);

    let reqs = git_srv.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.path == "/demo.git/git-upload-pack")
    );
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.path == "/demo.git/git-receive-pack")
    );
    assert!(
        reqs.iter()
            .all(|r| r.conn.sni.as_deref() == Some("git.test"))
    );
}
