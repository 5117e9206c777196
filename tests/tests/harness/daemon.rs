//! cgroup discovery and the daemon lifecycle helpers.

use super::*;

#[test]
fn cgroup2_mount_is_discovered_from_mountinfo() {
    require_root_or_skip!();
    let root = TestCgroupRoot::discover().unwrap();
    assert!(
        root.mount().join("cgroup.controllers").is_file(),
        "{:?}",
        root.mount()
    );
}

/// Stand-in for the `cordon` binary that follows the CLI contract, so the lifecycle logic of
/// `Daemon` (readiness, log capture, SIGKILL, restart, client args, cleanup on drop) is tested
/// before the real daemon exists. It tests the harness, not Cordon.
const FAKE_CORDON: &str = r#"#!/bin/sh
cmd=$1; shift
state=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) state=$2; shift 2 ;;
    --) shift; break ;;
    *) shift ;;
  esac
done
case "$cmd" in
  daemon)
    echo "fake daemon pid $$"
    trap 'echo "got SIGTERM"; exit 0' TERM
    sleep 0.3
    echo $$ > "$state/pid"
    echo "ready"
    while :; do sleep 0.05; done ;;
  status) [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null ;;
  cleanup) echo "cleanup $state" >> "$CLEANUP_LOG" ;;
  run) exec "$@" ;;
  *) echo "unknown $cmd" >&2; exit 2 ;;
esac
"#;

#[test]
fn daemon_helper_waits_for_status_logs_restarts_and_cleans_up() {
    require_root_or_skip!();
    let fixture = tempfile::tempdir().unwrap();
    let cleanup_log = fixture.path().join("cleanup.log");
    let bin = fixture.path().join("cordon");
    // Written beside it and copied by a `cp` child: a write descriptor on the executable
    // itself, inherited by another test's fork, would make running it fail with ETXTBSY.
    let source = fixture.path().join("cordon.sh");
    std::fs::write(
        &source,
        FAKE_CORDON.replace("$CLEANUP_LOG", cleanup_log.to_str().unwrap()),
    )
    .unwrap();
    cordon_e2e::copy_executable(&source, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let policies = PolicyDir::new().unwrap();
    policies
        .write("agents/bot", "[agent]\nname = \"bot\"\n")
        .unwrap();

    let opts = DaemonOpts::new(&policies.path(), "127.0.0.1:53".parse().unwrap()).bin(&bin);
    let mut d = Daemon::start(opts).unwrap();
    let state = d.state_dir().to_owned();
    assert!(d.log().contains("ready"), "{}", d.log());
    assert!(d.cordon(&["status"]).unwrap().status.success());

    let out = d
        .run_agent("bot", &["sh", "-c", "echo hi; echo oops >&2; exit 3"], T)
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"hi\n"[..], &b"oops\n"[..])
    );

    d.kill9().unwrap();
    assert!(!d.cordon(&["status"]).unwrap().status.success());
    d.restart().unwrap();
    assert!(d.cordon(&["status"]).unwrap().status.success());
    assert_eq!(
        d.log().matches("ready").count(),
        2,
        "log is appended across restarts"
    );
    let stop = d.stop().unwrap();
    assert!(
        stop.is_some_and(|s| s.success()),
        "SIGTERM handled: {stop:?}"
    );
    assert!(d.log().contains("got SIGTERM"));
    drop(d);
    assert_eq!(
        std::fs::read_to_string(&cleanup_log).unwrap(),
        format!("cleanup {}\n", state.display())
    );
    assert!(!state.exists(), "state dir removed on drop");
}
