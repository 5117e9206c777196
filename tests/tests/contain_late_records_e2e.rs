//! A refusal the daemon reads only after the agent is gone still names the
//! agent and the rule. The kernel reports Landlock refusals asynchronously;
//! on a loaded host a short-lived agent (and the child that was refused)
//! can exit, and its cgroup be reaped, before the daemon reads them. The
//! daemon is stopped here for exactly that window, so the test does not
//! depend on how loaded the host is.

use std::process::{Command, Stdio};
use std::time::Duration;

use cordon_e2e::host::{Handshake, HostUser, agent_as};
use cordon_e2e::process::wait_child;
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{PYTHON, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip};
use serde_json::json;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

/// Says it is ready, waits for the go file, then has a child and itself
/// read the credential (both refused), and exits at once.
const SHORT_LIVED: &str = r#"
import os, subprocess, sys, time
cred, ready, go = sys.argv[1:4]
open(ready, "w").close()
deadline = time.time() + 30
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
subprocess.run(["cat", cred], capture_output=True)
try:
    open(cred).read()
except OSError:
    pass
"#;

/// Runs the short-lived agent (as `nobody`, or as root in its own user
/// namespace) with the daemon stopped from just before its refusals until
/// it has exited, then returns the refusals of the credential the trail
/// names it for (waiting, bounded, for `want` of them).
fn refused_after_exit(root: bool, want: usize) -> Vec<cordon_audit::AuditRecord> {
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let credential = HostUser::regular()
        .unwrap()
        .plant_aws_credentials(&random_alnum(24))
        .unwrap();
    // Also the root agent's: its root is nobody on the host.
    let work = HostUser::nobody().workdir().unwrap();
    let hs = Handshake::in_dir(work.path());
    let args = [&credential, &hs.ready, &hs.go].map(|p| p.display().to_string());
    let argv = [PYTHON, "-c", SHORT_LIVED, &args[0], &args[1], &args[2]];
    let mut cmd = if root {
        let mut c = Command::new(cordon_bin());
        c.args(["run", "--agent", "brief", "--state-dir"])
            .arg(daemon.state_dir())
            .arg("--allow-root")
            .arg("--")
            .args(argv)
            .current_dir(work.path())
            .env_remove("SUDO_UID");
        c
    } else {
        agent_as(&daemon, &HostUser::nobody(), "brief", work.path(), &argv)
    };
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    hs.wait_ready().unwrap();

    let paused = daemon.pause().unwrap();
    hs.go().unwrap();
    let status = wait_child(&mut child, Duration::from_secs(30)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "the agent did not exit: {status:?}"
    );
    // The agent and its child are gone before the daemon reads a record.
    drop(paused);

    let path = [("path", json!(credential))];
    let t =
        cordon_e2e::read_trail_when(daemon.state_dir(), "brief", Duration::from_secs(15), |t| {
            t.matching("file.open", &path).len() >= want
        })
        .unwrap();
    let refused: Vec<_> = t
        .matching("file.open", &path)
        .into_iter()
        .cloned()
        .collect();
    for r in &refused {
        assert_eq!(cordon_e2e::trail::verdict(r), "deny", "{t}");
        assert_eq!(cordon_e2e::trail::rule(r), "contain:credentials", "{t}");
    }
    refused
}

fn exes(refused: &[cordon_audit::AuditRecord]) -> Vec<String> {
    refused.iter().filter_map(|r| r.exe.clone()).collect()
}

#[test]
fn a_refusal_read_after_the_agent_exited_still_names_the_agent_and_its_rule() {
    require_root_or_skip!();
    let exes = exes(&refused_after_exit(false, 2));
    assert!(
        exes.iter().any(|e| e.contains("python")) && exes.iter().any(|e| e.ends_with("/cat")),
        "both the agent and its child are named: {exes:?}"
    );
}

/// A root agent runs in a child of its launcher, which creates the domain:
/// its own refusal is named through its parent, the launcher.
#[test]
fn a_root_agents_refusal_read_after_it_exited_still_names_the_agent_and_its_rule() {
    require_root_or_skip!();
    let exes = exes(&refused_after_exit(true, 1));
    assert!(
        exes.iter().any(|e| e.contains("python")),
        "the agent is named: {exes:?}"
    );
}
