//! The daemon and the `cordon` CLI around real agents: crash and restart under traffic, two
//! daemons side by side, delegation to sub-agents, and clear refusals of bad input.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::ALLOWED_TEST_ONLY;
use cordon_e2e::world::{PYTHON, agent_command, show, start_daemon, stdout};
use cordon_e2e::{World, cordon_bin, read_trail, require_root_or_skip, run_with_timeout};
use serde_json::json;

const POLICY: &str = ALLOWED_TEST_ONLY;

const T: Duration = Duration::from_secs(30);

fn curl(url: &str) -> Vec<&str> {
    vec!["/usr/bin/curl", "-sSf", "--max-time", "5", url]
}

/// Bounded loop of plain-HTTP fetches, one line per attempt: `<i> ok|fail`.
const LOOP: &str = r#"
import sys, time, urllib.request
for i in range(int(sys.argv[1])):
    try:
        urllib.request.urlopen("http://allowed.test/tick%d" % i, timeout=1).read()
        r = "ok"
    except Exception:
        r = "fail"
    print(i, r, flush=True)
    time.sleep(0.15)
"#;

#[test]
fn sigkilled_daemon_fails_closed_and_traffic_resumes_after_restart() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let mut child = w
        .agent("looper", &[PYTHON, "-c", LOOP, "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.http.wait_for_count(3, Duration::from_secs(15)).unwrap();
    w.daemon.kill9().unwrap();
    let at_kill = w.http.count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        w.http.count(),
        at_kill,
        "traffic got through with the daemon dead"
    );
    w.daemon.restart().unwrap();
    let resumed = w.http.wait_for_count(at_kill + 2, Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    resumed.unwrap_or_else(|e| panic!("{e}; agent printed:\n{out}\nlog:\n{}", w.daemon.log()));
    // The agent saw failures while the daemon was down, then successes again.
    let results: Vec<&str> = out.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    let first_fail = results
        .iter()
        .position(|r| *r == "fail")
        .expect("no failure seen");
    assert!(
        results[first_fail..].contains(&"ok"),
        "no success after the restart: {out}"
    );
    let t = w.trail().unwrap().of_chain("looper");
    assert!(t.matching("http.request", &[]).len() >= at_kill + 2, "{t}");
}

/// Writes a file into its private temp dir, prints the dir, then waits to be killed.
const SCRATCH: &str = r#"
import os, sys, time
tmp = os.environ["TMPDIR"]
with open(os.path.join(tmp, "scratch.txt"), "w") as f:
    f.write("what an agent wrote")
print(tmp, flush=True)
time.sleep(60)
"#;

/// A daemon stopped while its agents ran, whose state is then thrown away, never sees them end,
/// so it never removes their private temp dirs, which hold whatever they wrote. `cordon
/// cleanup` kills the agents and removes those dirs, and nobody else's.
#[test]
fn cleanup_kills_the_agents_and_removes_their_private_temp_dirs() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let mut child = w
        .agent("scratcher", &[PYTHON, "-c", SCRATCH])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let tmp = std::path::PathBuf::from(line.trim());
    assert!(
        tmp.join("scratch.txt").is_file(),
        "the agent's temp dir {} holds no file: {}",
        tmp.display(),
        w.daemon.log()
    );
    // A directory of the host's own namespace's shape, which is not this daemon's.
    let stranger = tempfile::Builder::new()
        .prefix("cordon-")
        .tempdir()
        .unwrap();
    w.daemon.stop().unwrap();
    assert!(
        tmp.is_dir(),
        "the daemon removed the dir of a running agent"
    );
    let out = w.daemon.cordon(&["cleanup"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !tmp.exists(),
        "{} is still there: {}",
        tmp.display(),
        show(&out)
    );
    assert!(
        stranger.path().is_dir(),
        "cleanup removed another namespace's dir"
    );
    let deadline = std::time::Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent outlived cleanup"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_daemons_side_by_side_decide_their_own_agents() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let policy_b = POLICY.replace("allowed.test", "denied.test");
    let (_pb, daemon_b) = start_daemon(&w.dns, Some(&w.ca), &policy_b).unwrap();

    let a_ok = w.run("agent-a", &curl("http://allowed.test/a")).unwrap();
    let a_no = w.run("agent-a", &curl("http://denied.test/a")).unwrap();
    let b = |url: &str| {
        run_with_timeout(&mut agent_command(&daemon_b, "agent-b", &curl(url)), T).unwrap()
    };
    let b_ok = b("http://denied.test/b");
    let b_no = b("http://allowed.test/b");
    assert!(a_ok.status.success(), "{}", show(&a_ok));
    assert!(b_ok.status.success(), "{}", show(&b_ok));
    assert!(!a_no.status.success(), "{}", show(&a_no));
    assert!(!b_no.status.success(), "{}", show(&b_no));
    let hosts: Vec<_> = w
        .http
        .received()
        .into_iter()
        .map(|r| (r.host, r.path))
        .collect();
    assert_eq!(
        hosts,
        [
            (Some("allowed.test".to_owned()), "/a".to_owned()),
            (Some("denied.test".to_owned()), "/b".to_owned())
        ]
    );
    let ta = w.trail().unwrap();
    let tb = read_trail(daemon_b.state_dir()).unwrap();
    assert!(
        ta.records()
            .iter()
            .all(|r| r.chain.as_deref() == Some("agent-a")),
        "{ta}"
    );
    assert!(
        tb.records()
            .iter()
            .all(|r| r.chain.as_deref() == Some("agent-b")),
        "{tb}"
    );
    assert_eq!(
        verdict(tb.one("http.request", &[("host", json!("denied.test"))])),
        "allow"
    );
}

const SUB_POLICY: &str = r#"
agents = ["sub"]
default = "deny"

[[rule]]
id = "sub-dns"
action = "dns.query"
hosts = ["*.test"]
decision = "allow"

[[rule]]
id = "sub-http"
action = "http.request"
hosts = ["allowed.test", "denied.test"]
decision = "allow"
"#;

#[test]
fn a_sub_agent_is_bound_by_its_parents_policy_and_logged_with_its_chain() {
    require_root_or_skip!();
    let parent_policy = POLICY.replace("agents = [\"*\"]", "agents = [\"parent\"]");
    let w = World::start(&parent_policy).unwrap();
    w.policies.write("sub.toml", SUB_POLICY).unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let bin = cordon_bin();
    let bin = bin.to_str().unwrap();
    let state = w.daemon.state_dir().to_str().unwrap();
    let script = "for h in allowed.test denied.test; do \
        \"$0\" run --agent sub --state-dir \"$1\" -- /usr/bin/curl -sSf --max-time 5 http://$h/sub; \
        echo \" $h rc=$?\"; done";
    let out = w
        .run("parent", &["/bin/sh", "-c", script, bin, state])
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("allowed.test rc=0"), "{}", show(&out));
    assert!(!text.contains("denied.test rc=0"), "{}", show(&out));
    let paths: Vec<_> = w.http.received().into_iter().map(|r| r.host).collect();
    assert_eq!(paths, [Some("allowed.test".to_owned())]);

    let t = w.trail().unwrap().of_chain("parent/sub");
    let ok = t.one("http.request", &[("host", json!("allowed.test"))]);
    assert_eq!(verdict(ok), "allow", "{t}");
    let denied = t.matching("dns.query", &[("name", json!("denied.test"))]);
    assert!(
        !denied.is_empty() && denied.iter().all(|r| verdict(r) == "deny"),
        "{t}"
    );
    assert!(
        denied.iter().all(|r| rule(r) != "sub-dns"),
        "the child's allow decided:\n{t}"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();

    let bad = w.run("bad/name", &["/bin/true"]).unwrap();
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert!(!bad.status.success(), "{}", show(&bad));
    assert_eq!(err.trim().lines().count(), 1, "{}", show(&bad));
    assert!(err.contains("bad/name"), "{}", show(&bad));

    let missing = w.run("bot", &["/nonexistent/cordon-e2e-cmd"]).unwrap();
    assert_eq!(missing.status.code(), Some(127), "{}", show(&missing));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("not found") && err.contains("cordon-e2e-cmd"),
        "{}",
        show(&missing)
    );

    let mut root = std::process::Command::new(cordon_bin());
    root.args(["run", "--agent", "rooty", "--state-dir"])
        .arg(w.daemon.state_dir())
        .args(["--", "/bin/true"])
        .env_remove("SUDO_UID")
        .current_dir("/");
    let refused = run_with_timeout(&mut root, T).unwrap();
    assert!(!refused.status.success(), "{}", show(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--allow-root"),
        "{}",
        show(&refused)
    );
    assert!(w.trail().unwrap().is_empty(), "refused runs made decisions");
}

#[test]
fn a_stale_socket_after_a_crash_is_named_as_such() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    w.daemon.kill9().unwrap();
    let status = w.daemon.cordon(&["status"]).unwrap();
    assert!(!status.status.success(), "{}", show(&status));
    let err = String::from_utf8_lossy(&status.stderr).to_ascii_lowercase();
    assert!(err.contains("stale"), "status: {}", show(&status));
    let run = w.run("bot", &["/bin/true"]).unwrap();
    assert!(!run.status.success(), "{}", show(&run));
    let err = String::from_utf8_lossy(&run.stderr).to_ascii_lowercase();
    assert!(err.contains("stale"), "run: {}", show(&run));
}

/// A host without cgroup v2 cannot confine agents: the daemon must refuse
/// to start, in one line that names the problem, instead of running
/// without enforcement. Simulated in a private mount namespace where the
/// cgroup2 mount has been taken away.
#[test]
fn a_missing_cgroup2_mount_stops_the_daemon_with_one_line() {
    require_root_or_skip!();
    let mount = cordon_e2e::TestCgroupRoot::discover()
        .unwrap()
        .mount()
        .to_path_buf();
    let state = tempfile::tempdir().unwrap();
    let script = format!(
        "umount -l {} && exec {} daemon --state-dir {} --policies /nonexistent --dns-upstream 127.0.0.1:9",
        mount.display(),
        cordon_bin().display(),
        state.path().display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let out = run_with_timeout(&mut cmd, T).unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.contains("cgroup2") && last.contains("cordon: error"),
        "{}",
        show(&out)
    );
}

/// A control socket group that does not exist is a configuration error, not
/// a socket served without it: the start stops and names the setting.
#[test]
fn a_socket_group_that_does_not_exist_stops_the_start_and_names_it() {
    require_root_or_skip!();
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("cordon.toml");
    std::fs::write(&config, "socket_group = \"cordon-e2e-no-such-group\"\n").unwrap();
    let mut cmd = std::process::Command::new(cordon_bin());
    cmd.arg("daemon")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(state.path())
        .args([
            "--policies",
            "/nonexistent",
            "--dns-upstream",
            "127.0.0.1:9",
        ]);
    let out = run_with_timeout(&mut cmd, T).unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("socket_group") && err.contains("cordon-e2e-no-such-group"),
        "{}",
        show(&out)
    );
}
