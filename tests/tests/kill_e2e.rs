//! The kill switch end to end, checked against the kernel (cgroup.events, /proc) and the
//! upstream rather than the daemon's own report: a kill freezes an agent and its traffic stops,
//! resume lets it continue where it was, it works with the daemon down and survives a restart,
//! it can cut a single connector or a single instance, terminate leaves no process behind, and
//! no agent - not even one running as root - can operate Cordon.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use cordon_e2e::agent_cgroup::{
    PsRow, RunningAgent, is_alive, is_frozen, is_populated, pids_recursive, ps, wait_frozen,
};
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{PYTHON, show, stdout};
use cordon_e2e::{World, cordon_bin, require_root_or_skip, wait_until};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-any"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

const T: Duration = Duration::from_secs(10);
/// How long a killed agent is watched for traffic that should not come.
const QUIET: Duration = Duration::from_millis(1500);

/// `python3 -c LOOP TAG N MS`: N plain-HTTP fetches of `/TAG/<i>`, MS apart, one line each.
const LOOP: &str = r#"
import sys, time, urllib.request
tag, n, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000
for i in range(n):
    try:
        urllib.request.urlopen("http://allowed.test/%s/%d" % (tag, i), timeout=2).read()
        r = "ok"
    except Exception:
        r = "fail"
    print(i, r, flush=True)
    time.sleep(pause)
"#;

/// Alternates a GitHub read (`gh`) and a plain-HTTP fetch (`http`), 100 ms apart.
const TWO_CONNECTORS: &str = r#"
import sys, urllib.request, urllib.error, time
def get(url):
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return "fail"
for i in range(int(sys.argv[1])):
    print("gh", get("https://api.github.com/repos/o/r/issues/%d" % i), flush=True)
    print("http", get("http://allowed.test/plain/%d" % i), flush=True)
    time.sleep(0.1)
"#;

fn spawn(w: &World, name: &str, cmd: &[&str]) -> RunningAgent {
    let child = w
        .agent(name, cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    RunningAgent::new(child)
}

fn spawn_loop(w: &World, name: &str, tag: &str, n: u32, pause_ms: u32) -> RunningAgent {
    let (n, pause) = (n.to_string(), pause_ms.to_string());
    spawn(w, name, &[PYTHON, "-c", LOOP, tag, &n, &pause])
}

/// Requests the plain-HTTP upstream got under `/TAG/`.
fn hits(w: &World, tag: &str) -> usize {
    let prefix = format!("/{tag}/");
    w.http
        .received()
        .iter()
        .filter(|r| r.path.starts_with(&prefix))
        .count()
}

fn wait_hits(w: &World, tag: &str, n: usize) {
    wait_until(
        &format!("{n} requests under /{tag}/"),
        Duration::from_secs(15),
        || hits(w, tag) >= n,
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", w.daemon.log()));
}

/// The daemon's cgroup parent, from `cordon status`.
fn cgroup_parent(w: &World) -> PathBuf {
    PathBuf::from(w.status().unwrap()["cgroup_parent"].as_str().unwrap())
}

fn cordon_ok(w: &World, args: &[&str]) -> String {
    let out = w.daemon.cordon(args).unwrap();
    assert!(out.status.success(), "cordon {args:?}: {}", show(&out));
    stdout(&out)
}

fn state_of(w: &World, agent: &str, instance: &str) -> String {
    let rows = ps(&w.daemon).unwrap();
    rows.iter()
        .find(|r| r.agent == agent && r.instance == instance)
        .map(|r| r.state.clone())
        .unwrap_or_else(|| panic!("{agent}/{instance} not in ps: {rows:?}"))
}

fn instance_id(cg: &Path) -> String {
    cg.file_name().unwrap().to_string_lossy().into_owned()
}

/// Asserts the count does not move over [`QUIET`].
fn assert_quiet(w: &World, tag: &str, what: &str) {
    let at = hits(w, tag);
    std::thread::sleep(QUIET);
    assert_eq!(hits(w, tag), at, "{what}: traffic under /{tag}/ went on");
}

fn terminated(agent: &mut RunningAgent) -> Output {
    agent
        .wait(T)
        .unwrap()
        .expect("the agent outlived `cordon terminate`")
}

#[test]
fn kill_stops_a_looping_agent_and_resume_lets_it_continue() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let mut agent = spawn_loop(&w, "looper", "loop", 300, 50);
    let cg = agent.instance_cgroup(&cgroup_parent(&w)).unwrap();
    wait_hits(&w, "loop", 5);

    let out = cordon_ok(&w, &["kill", "looper", "--reason", "e2e"]);
    let at_kill = hits(&w, "loop");
    assert!(out.lines().any(|l| l == "frozen looper"), "{out}");
    let us: u64 = out
        .split("killed in ")
        .nth(1)
        .and_then(|r| r.split(" us").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `killed in N us`: {out}"));
    assert!(us < 2_000_000, "kill took {us} us");
    assert!(
        is_frozen(&cg).unwrap(),
        "the instance is not frozen after kill returned"
    );
    assert!(is_alive(agent.pid()), "kill must freeze, not end the agent");
    std::thread::sleep(QUIET);
    assert_eq!(
        hits(&w, "loop"),
        at_kill,
        "requests reached the upstream after the kill"
    );
    assert_eq!(state_of(&w, "looper", &instance_id(&cg)), "killed");
    let t = w.trail().unwrap();
    assert!(
        t.records().iter().any(|r| r.kind.as_str() == "agent.kill"
            && r.agent.as_deref() == Some("looper")
            && r.reason.as_deref() == Some("e2e")),
        "{t}"
    );

    let out = cordon_ok(&w, &["resume", "looper"]);
    assert!(out.lines().any(|l| l == "resumed looper"), "{out}");
    assert!(!is_frozen(&cg).unwrap());
    wait_hits(&w, "loop", at_kill + 3);
    assert_eq!(state_of(&w, "looper", &instance_id(&cg)), "running");

    let out = cordon_ok(&w, &["terminate", "looper"]);
    assert!(out.contains("terminated 1 processes"), "{out}");
    let done = terminated(&mut agent);
    let lines = stdout(&done);
    // One process carried on where it was frozen: the loop counter never restarted or skipped.
    let indices: Vec<usize> = lines
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert!(indices.len() > at_kill + 2, "{lines}");
    assert!(indices.iter().enumerate().all(|(i, n)| i == *n), "{lines}");
}

#[test]
fn kill_with_the_daemon_down_still_freezes_and_a_restarted_daemon_keeps_it_killed() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let parent = cgroup_parent(&w);
    let mut agent = spawn_loop(&w, "offline", "off", 300, 50);
    let cg = agent.instance_cgroup(&parent).unwrap();
    wait_hits(&w, "off", 3);
    w.daemon.kill9().unwrap();

    let out = w.daemon.cordon(&["kill", "offline"]).unwrap();
    assert!(out.status.success(), "offline kill: {}", show(&out));
    assert!(
        stdout(&out).lines().any(|l| l == "frozen offline"),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("daemon not running"),
        "{}",
        show(&out)
    );
    assert!(is_frozen(&cg).unwrap(), "the offline kill did not freeze");

    w.daemon.restart().unwrap();
    let at_restart = hits(&w, "off");
    assert!(
        is_frozen(&cg).unwrap(),
        "a restarted daemon thawed a killed agent"
    );
    assert_eq!(state_of(&w, "offline", &instance_id(&cg)), "killed");
    assert_quiet(&w, "off", "after the restart");
    let again = w.run("offline", &["/bin/true"]).unwrap();
    assert!(
        !again.status.success(),
        "a killed agent was started: {}",
        show(&again)
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("killed"),
        "{}",
        show(&again)
    );
    let other = w.run("someone-else", &["/bin/true"]).unwrap();
    assert!(other.status.success(), "{}", show(&other));

    let out = cordon_ok(&w, &["resume", "offline"]);
    assert!(out.lines().any(|l| l == "resumed offline"), "{out}");
    assert!(!is_frozen(&cg).unwrap());
    wait_hits(&w, "off", at_restart + 3);
    let ok = w.run("offline", &["/bin/true"]).unwrap();
    assert!(ok.status.success(), "after resume: {}", show(&ok));
    cordon_ok(&w, &["terminate", "offline"]);
    terminated(&mut agent);
}

#[test]
fn kill_by_connector_denies_that_connectors_actions_without_freezing() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let mut agent = spawn(&w, "mixed", &[PYTHON, "-c", TWO_CONNECTORS, "150"]);
    let cg = agent.instance_cgroup(&cgroup_parent(&w)).unwrap();
    wait_until(
        "both upstreams to see traffic",
        Duration::from_secs(15),
        || w.https.count() >= 3 && hits(&w, "plain") >= 3,
    )
    .unwrap();

    let out = cordon_ok(&w, &["kill", "mixed", "--connector", "github"]);
    // A static token: nothing minted, so nothing to revoke.
    assert_eq!(
        out.trim(),
        "cut connector github for mixed: 0 GitHub tokens revoked (0 failed, lapsing at expiry), 0 AWS sessions dropped"
    );
    // A GitHub request already decided before the cut may still land; wait that out.
    std::thread::sleep(Duration::from_millis(300));
    let (gh_at, http_at) = (w.https.count(), hits(&w, "plain"));
    std::thread::sleep(QUIET);
    assert_eq!(
        w.https.count(),
        gh_at,
        "GitHub traffic went on after the cut"
    );
    assert!(
        hits(&w, "plain") >= http_at + 3,
        "other traffic stopped too"
    );
    assert!(!is_frozen(&cg).unwrap(), "a connector cut froze the agent");
    assert_eq!(state_of(&w, "mixed", &instance_id(&cg)), "running");
    let t = w.trail().unwrap().of_chain("mixed");
    let cut = t.matching("github.issue.read", &[]);
    assert!(
        cut.iter()
            .any(|r| verdict(r) == "deny" && rule(r) == "kill:connector"),
        "{t}"
    );

    let out = cordon_ok(&w, &["resume", "mixed", "--connector", "github"]);
    assert!(out.contains("restored connector github"), "{out}");
    wait_until("GitHub traffic again", Duration::from_secs(10), || {
        w.https.count() >= gh_at + 2
    })
    .unwrap();
    cordon_ok(&w, &["terminate", "mixed"]);
    let done = terminated(&mut agent);
    let text = stdout(&done);
    assert!(
        text.lines().any(|l| l == "gh 403"),
        "the agent saw no refusal:\n{text}"
    );
    assert!(!text.contains("fail"), "requests failed outright:\n{text}");
}

#[test]
fn kill_instance_scope_leaves_other_instances_running() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let parent = cgroup_parent(&w);
    let mut a = spawn_loop(&w, "twin", "a", 300, 50);
    let mut b = spawn_loop(&w, "twin", "b", 300, 50);
    let (cg_a, cg_b) = (
        a.instance_cgroup(&parent).unwrap(),
        b.instance_cgroup(&parent).unwrap(),
    );
    assert_ne!(cg_a, cg_b);
    wait_hits(&w, "a", 3);
    wait_hits(&w, "b", 3);
    let (id_a, id_b) = (instance_id(&cg_a), instance_id(&cg_b));
    let rows = ps(&w.daemon).unwrap();
    for id in [&id_a, &id_b] {
        assert!(
            rows.contains(&PsRow {
                agent: "twin".into(),
                instance: id.clone(),
                state: "running".into()
            }),
            "{id} not running in ps: {rows:?}"
        );
    }

    let target = format!("twin/{id_a}");
    let out = cordon_ok(&w, &["kill", &target]);
    assert!(
        out.lines().any(|l| l == format!("frozen {target}")),
        "{out}"
    );
    assert!(is_frozen(&cg_a).unwrap());
    assert!(!is_frozen(&cg_b).unwrap(), "the other instance was frozen");
    let (a_at, b_at) = (hits(&w, "a"), hits(&w, "b"));
    std::thread::sleep(QUIET);
    assert_eq!(hits(&w, "a"), a_at, "the killed instance's traffic went on");
    assert!(hits(&w, "b") >= b_at + 3, "the other instance stopped");
    assert_eq!(state_of(&w, "twin", &id_a), "killed");
    assert_eq!(state_of(&w, "twin", &id_b), "running");
    // The agent name is not killed: a new instance may start.
    let fresh = w.run("twin", &["/bin/true"]).unwrap();
    assert!(fresh.status.success(), "{}", show(&fresh));

    cordon_ok(&w, &["resume", &target]);
    wait_frozen(&cg_a, false, T).unwrap();
    wait_hits(&w, "a", a_at + 3);
    cordon_ok(&w, &["terminate", "twin"]);
    terminated(&mut a);
    terminated(&mut b);
}

#[test]
fn an_agent_cannot_operate_cordon_even_as_root() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let parent = cgroup_parent(&w);
    let victim = spawn(&w, "victim", &["/bin/sleep", "60"]);
    let victim_cg = victim.instance_cgroup(&parent).unwrap();

    let script = r#"
bin=$0; state=$1
op() { echo "=== $*"; "$bin" "$@" --state-dir "$state" 2>&1; echo "rc=$?"; }
echo "uid=$(id -u)"
op kill victim
op terminate victim
op approve x
op vault list
echo stolen | op vault set planted --from-stdin
op policy reload
"#;
    let bin = cordon_bin();
    let state = w.daemon.state_dir().to_str().unwrap().to_owned();
    let mut cmd = w.daemon.cordon_command(&[
        "run",
        "--agent",
        "rooty",
        "--user",
        "root",
        "--allow-root",
        "--",
        "/bin/sh",
        "-c",
        script,
        bin.to_str().unwrap(),
        &state,
    ]);
    cmd.current_dir("/");
    let out = cordon_e2e::run_with_timeout(&mut cmd, T * 3).unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text.contains("uid=0"), "{}", show(&out));
    let sections: Vec<&str> = text.split("=== ").skip(1).collect();
    assert_eq!(sections.len(), 6, "{text}");
    for s in sections {
        let op = s.lines().next().unwrap_or("");
        assert!(
            !s.contains("rc=0"),
            "`cordon {op}` succeeded inside an agent:\n{s}"
        );
        assert!(
            s.contains("agents may not operate Cordon"),
            "`cordon {op}` was not refused as an agent:\n{s}"
        );
    }

    assert!(
        !is_frozen(&victim_cg).unwrap(),
        "the agent's kill took effect"
    );
    assert!(is_alive(victim.pid()), "the agent's terminate took effect");
    let listing = cordon_ok(&w, &["vault", "list"]);
    assert!(!listing.contains("planted"), "{listing}");
    let t = w.trail().unwrap();
    let refused: Vec<&str> = t
        .records()
        .iter()
        .filter(|r| r.kind.as_str() == "control.refused")
        .inspect(|r| assert_eq!(r.chain.as_deref(), Some("rooty"), "{t}"))
        .filter_map(|r| r.action.as_deref())
        .collect();
    for op in [
        "control.kill",
        "control.terminate",
        "control.approve",
        "control.vault_list",
        "control.vault_set",
        "control.policy_reload",
    ] {
        assert!(
            refused.contains(&op),
            "no control.refused record for {op}:\n{t}"
        );
    }
}

/// A process tree that tries to outlive its agent: background jobs, a new session, a process
/// ignoring SIGTERM and SIGHUP, and a forked python.
const TREE: &str = r#"
sleep 300 &
sleep 300 &
setsid sh -c 'sleep 300 & sleep 300' &
(trap '' TERM HUP; sleep 300) &
python3 -c 'import os, time; os.fork(); time.sleep(300)' &
wait
"#;

#[test]
fn terminate_kills_every_process_of_the_agent() {
    require_root_or_skip!();
    let w = World::start(POLICY).unwrap();
    let parent = cgroup_parent(&w);
    let mut worker = spawn(&w, "worker", &["/bin/sh", "-c", TREE]);
    let bystander = spawn(&w, "bystander", &["/bin/sleep", "60"]);
    let cg = worker.instance_cgroup(&parent).unwrap();
    let bystander_cg = bystander.instance_cgroup(&parent).unwrap();
    // sh, 2 sleeps, the setsid shell and its sleeps, the trapping sleep, 2 pythons: at least 8
    // (shells may exec their last command).
    let mut pids = Vec::new();
    wait_until("the whole process tree", T, || {
        pids = pids_recursive(&cg).unwrap_or_default();
        pids.len() >= 8
    })
    .unwrap_or_else(|e| panic!("{e}: {pids:?}"));
    std::thread::sleep(Duration::from_millis(300));
    pids = pids_recursive(&cg).unwrap();

    let out = cordon_ok(&w, &["terminate", "worker"]);
    let n: usize = out
        .trim()
        .strip_prefix("terminated ")
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    assert!(
        n >= pids.len(),
        "terminated {n} of {} processes: {out}",
        pids.len()
    );

    let done = terminated(&mut worker);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(done.status.signal(), Some(9), "{}", show(&done));
    wait_until("every process of the agent to be gone", T, || {
        pids.iter().all(|p| !is_alive(*p))
    })
    .unwrap_or_else(|e| {
        let left: Vec<_> = pids.iter().filter(|p| is_alive(**p)).collect();
        panic!("{e}: still alive {left:?}")
    });
    wait_until("the instance cgroup to empty", T, || {
        is_populated(&cg).is_ok_and(|p| !p)
    })
    .unwrap();

    assert!(
        is_alive(bystander.pid()),
        "another agent was terminated too"
    );
    assert!(is_populated(&bystander_cg).unwrap());
    let none = w.daemon.cordon(&["terminate", "no-such-agent"]).unwrap();
    assert!(!none.status.success(), "{}", show(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no-such-agent"),
        "{}",
        show(&none)
    );
}
