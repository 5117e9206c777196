//! `cordon install` / `cordon uninstall` into a scratch root, for real, as root: the produced
//! unit passes `systemd-analyze verify`, modes are right, the host is not touched, and a purge
//! leaves the root exactly as it was. Plus the daemon's side of the unit: sd_notify READY /
//! WATCHDOG / STOPPING and SIGHUP policy reload.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cordon_e2e::{
    Daemon, DaemonOpts, PolicyDir, cordon_bin, require_root_or_skip, run_with_timeout,
    workspace_root,
};

const T: Duration = Duration::from_secs(60);

fn cordon(args: &[&str]) -> Output {
    let out = run_with_timeout(Command::new(cordon_bin()).args(args), T).unwrap();
    assert!(
        out.status.success(),
        "cordon {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch root that already holds what the target OS provides and the unit runs
/// (`/bin/kill`), so the install is checked against something that looks like a system.
fn scratch_root() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("cordon-e2e-install-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.join("bin/kill")).unwrap();
    (tmp, root)
}

fn install(root: &Path) -> String {
    let policies = workspace_root().join("policies");
    stdout(&cordon(&[
        "install",
        "--prefix",
        root.to_str().unwrap(),
        "--policies-from",
        policies.to_str().unwrap(),
    ]))
}

fn uninstall_purge(root: &Path) -> String {
    stdout(&cordon(&[
        "uninstall",
        "--prefix",
        root.to_str().unwrap(),
        "--purge",
    ]))
}

/// Every path under `root` with its type and mode: "nothing left behind" compares these.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (bool, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                (m.is_dir(), m.permissions().mode() & 0o7777),
            );
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn have_systemd_analyze() -> bool {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    let bar = "!".repeat(78);
    eprintln!(
        "\n{bar}\n!! SKIPPED: systemd-analyze is not installed, the unit was NOT verified.\n\
         !! Install the `systemd` package (cargo xtask setup does).\n{bar}\n"
    );
    false
}

/// Verifies the unit inside the scratch root, this unit only: the root has no systemd units of
/// its own (sysinit.target), but unknown keys, bad values and missing executables still fail.
fn systemd_analyze_verify(root: &Path) -> Output {
    run_with_timeout(
        Command::new("systemd-analyze").args([
            "verify",
            "--man=no",
            "--recursive-errors=no",
            &format!("--root={}", root.display()),
            "cordon.service",
        ]),
        T,
    )
    .unwrap()
}

fn host_has_group(name: &str) -> bool {
    Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn install_into_scratch_root_verifies_and_purge_leaves_nothing_behind() {
    require_root_or_skip!();
    let (_tmp, root) = scratch_root();
    let before = snapshot(&root);
    let host_group_before = host_has_group("cordon");
    let host_unit_before = Path::new("/etc/systemd/system/cordon.service").exists();

    let out = install(&root);
    assert!(out.contains("service: not started"), "{out}");
    assert!(
        out.contains("group cordon: not created (scratch root"),
        "{out}"
    );

    if have_systemd_analyze() {
        let v = systemd_analyze_verify(&root);
        assert!(
            v.status.success() && v.stderr.is_empty() && v.stdout.is_empty(),
            "systemd-analyze verify: {}\n{}{}",
            v.status,
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }

    let state = root.join("var/lib/cordon");
    assert_eq!(mode(&state), 0o700, "state dir");
    assert_eq!(mode(&state.join("ca/ca.key")), 0o600, "CA key");
    assert_eq!(mode(&state.join("ca/ca.pem")), 0o644, "CA cert");
    assert_eq!(mode(&root.join("usr/local/bin/cordon")), 0o755, "binary");
    assert_eq!(
        mode(&root.join("etc/systemd/system/cordon.service")),
        0o644,
        "unit"
    );
    assert_eq!(
        std::fs::read(root.join("usr/local/bin/cordon")).unwrap(),
        std::fs::read(cordon_bin()).unwrap(),
        "installed binary differs from the one that installed it"
    );
    let policies = root.join("etc/cordon/policies");
    assert!(policies.join("connectors").is_dir());
    cordon(&["policy", "check", policies.to_str().unwrap()]);

    assert_eq!(
        host_has_group("cordon"),
        host_group_before,
        "host group touched"
    );
    assert_eq!(
        Path::new("/etc/systemd/system/cordon.service").exists(),
        host_unit_before,
        "host unit touched"
    );

    let out = uninstall_purge(&root);
    assert!(out.contains("kernel state: untouched"), "{out}");
    assert_eq!(
        snapshot(&root),
        before,
        "uninstall --purge left something behind"
    );

    let again = uninstall_purge(&root);
    assert!(
        !again.contains(": removed"),
        "second uninstall removed something:\n{again}"
    );
}

#[test]
fn systemd_analyze_catches_a_broken_unit_in_the_scratch_root() {
    require_root_or_skip!();
    if !have_systemd_analyze() {
        return;
    }
    let (_tmp, root) = scratch_root();
    install(&root);
    let unit = root.join("etc/systemd/system/cordon.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text.replace("Type=notify", "Type=notify\nWatchdogSecs=30"),
    )
    .unwrap();
    let v = systemd_analyze_verify(&root);
    assert!(!v.status.success(), "a misspelt key passed verify");
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("WatchdogSecs"),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    // Without the executables the unit runs, verify fails too.
    std::fs::write(&unit, text).unwrap();
    std::fs::remove_file(root.join("usr/local/bin/cordon")).unwrap();
    assert!(!systemd_analyze_verify(&root).status.success());
}

#[test]
fn reinstall_keeps_operator_files_and_reports_unchanged() {
    require_root_or_skip!();
    let (_tmp, root) = scratch_root();
    install(&root);
    let cfg = root.join("etc/cordon/cordon.toml");
    std::fs::write(
        &cfg,
        "state_dir = \"/var/lib/cordon\"\nproxy_port = 15001\n",
    )
    .unwrap();
    let ca = std::fs::read(root.join("var/lib/cordon/ca/ca.pem")).unwrap();
    let out = install(&root);
    assert!(out.contains("kept the existing file"), "{out}");
    assert!(
        out.contains("policies") && out.contains("kept the existing directory"),
        "{out}"
    );
    assert!(
        out.contains("binary") && out.contains(": unchanged"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "state_dir = \"/var/lib/cordon\"\nproxy_port = 15001\n"
    );
    assert_eq!(
        std::fs::read(root.join("var/lib/cordon/ca/ca.pem")).unwrap(),
        ca
    );
    uninstall_purge(&root);
}

/// Collects notification datagrams until one contains `want` or the deadline passes.
fn wait_for_notification(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == want);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want:?} within {timeout:?}; got {seen:?}");
}

/// The first daemon log line holding every one of `needles` (bounded wait).
fn wait_for_log_line(daemon: &Daemon, needles: &[&str]) -> String {
    let found = |log: String| {
        log.lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(l) = found(daemon.log()) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no log line with {needles:?}:\n{}", daemon.log());
}

#[test]
fn daemon_notifies_systemd_and_reloads_policy_on_sighup() {
    require_root_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let notify_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    let policies = PolicyDir::new().unwrap();
    policies
        .write("ops.toml", "agents = [\"ops\"]\ndefault = \"deny\"\n")
        .unwrap();
    let opts = DaemonOpts::new(&policies.path(), "127.0.0.1:53".parse().unwrap())
        .env("NOTIFY_SOCKET", notify_path.to_str().unwrap())
        .env("WATCHDOG_USEC", "1000000");
    let mut daemon = Daemon::start(opts).unwrap();
    let pid = nix::unistd::Pid::from_raw(daemon.pid().unwrap() as i32);

    let seen = wait_for_notification(&sock, "READY=1", Duration::from_secs(10));
    assert!(
        seen.iter()
            .any(|m| m.lines().any(|l| l.starts_with("STATUS=enforcing"))),
        "{seen:?}"
    );
    wait_for_notification(&sock, "WATCHDOG=1", Duration::from_secs(3));

    // A broken policy: logged with file and line, the old one stays, the daemon stays up.
    policies
        .write(
            "broken.toml",
            "agents = [\"x\"]\ndefault = \"deny\"\n[[rule]]\nid = \"r\"\naction = \"a\"\ndecision = \"perhaps\"\n",
        )
        .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for_notification(&sock, "RELOADING=1", Duration::from_secs(5));
    wait_for_notification(&sock, "READY=1", Duration::from_secs(5));
    let line = wait_for_log_line(&daemon, &["policy reload rejected", "SIGHUP"]);
    assert!(line.contains("broken.toml:6"), "no file:line in {line}");
    assert!(daemon.cordon(&["status"]).unwrap().status.success());

    // Fixed: the reload takes.
    policies.remove("broken.toml").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for_log_line(&daemon, &["policy reloaded", "SIGHUP"]);

    daemon.stop().unwrap();
    wait_for_notification(&sock, "STOPPING=1", Duration::from_secs(5));
}
