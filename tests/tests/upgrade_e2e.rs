//! Upgrading Cordon while an agent works: an agent alternates allowed and denied plain-HTTP
//! requests in a loop (each bounded by a timeout) while the daemon's binary is replaced and the
//! daemon moves to it. Nothing may reach a denied upstream, every allowed request must complete
//! or fail cleanly (never hang), and the audit chain must verify across the change.
//!
//! The "old" binary is a copy of the binary under test at another path: building a previous
//! commit in CI would cost more time than the suite has. The new one is installed over it as
//! dpkg does (written beside it, renamed over it), so the running daemon's file is replaced
//! under it. Two ways to move over are tested:
//! - in place (`SIGUSR2`): the daemon drains, execs the installed file and keeps its sockets,
//!   so not one allowed request may fail;
//! - stop and start (`SIGTERM`, then the new binary), across a map ABI change: the old pins are
//!   moved to another version's directory first (real pins from the real earlier load), so the
//!   new daemon attaches beside them and must release them. Requests made while no daemon runs
//!   are refused (fail closed), never let through and never left hanging.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use cordon_e2e::daemon::{Daemon, DaemonOpts, PolicyDir};
use cordon_e2e::process::{copy_executable, wait_child, wait_until};
use cordon_e2e::world::{PYTHON, agent_command, world_writable_dir};
use cordon_e2e::{HttpServer, NetNs, TestDns, cordon_bin, require_root_or_skip};

/// `allowed.test` may be fetched; `denied.test` resolves (so its requests reach the proxy and are
/// refused there by the default) but nothing allows fetching it.
const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-test"
action = "dns.query"
hosts = ["allowed.test", "denied.test"]
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

/// In the denied requests' paths: it must never reach the upstream.
const MARKER: &str = "upgrade-denied-marker";
/// Each request's own bound; a request that needs longer is a hang.
const REQUEST_TIMEOUT_S: u64 = 10;

/// Alternates an allowed and a denied request until the stop file exists. One line per
/// request: `<allowed|denied> <outcome> <milliseconds>`.
const LOOP: &str = r#"
import errno, http.client, os, socket, sys, time
stop, timeout, marker = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def fetch(host, path):
    try:
        c = http.client.HTTPConnection(host, 80, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return "status-%d" % r.status
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except PermissionError:
        return "eperm"
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
            http.client.IncompleteRead):
        return "closed"
    except socket.gaierror as e:
        return "dns-failed"
    except OSError as e:
        return "oserror-%s" % errno.errorcode.get(e.errno, e.errno)
i = 0
deadline = time.time() + 120
while not os.path.exists(stop) and time.time() < deadline:
    for kind, host, path in (("allowed", "allowed.test", "/ok%d" % i),
                             ("denied", "denied.test", "/%s-%d" % (marker, i))):
        t = time.monotonic()
        out = fetch(host, path)
        print(kind, out, int((time.monotonic() - t) * 1000), flush=True)
    i += 1
    time.sleep(0.05)
"#;

/// Outcomes an allowed request may end with while no daemon runs: the kernel refuses the
/// connect (EPERM, or refused at a closed port), the connection is closed at a drain's bound,
/// the resolver cannot answer, or the proxy answers 503.
const CLEAN_FAILURES: &[&str] = &["eperm", "refused", "closed", "dns-failed", "status-503"];

struct Upgrade {
    _ns: NetNs,
    http: HttpServer,
    _dns: TestDns,
    _policies: PolicyDir,
    /// Holds the installed binary; dropped after the daemon (field order).
    daemon: Daemon,
    _bin_dir: tempfile::TempDir,
    installed: PathBuf,
    stop_dir: tempfile::TempDir,
}

impl Upgrade {
    /// A daemon running from a copy of the binary under test at `<tmp>/bin/cordon`.
    fn start() -> Upgrade {
        let ns = NetNs::new().unwrap();
        let http = HttpServer::start(&ns).unwrap();
        let dns = TestDns::start().unwrap();
        for name in ["allowed.test", "denied.test"] {
            dns.set(name, &[IpAddr::V4(ns.v4())]);
        }
        let policies = PolicyDir::new().unwrap();
        policies.write("e2e.toml", POLICY).unwrap();
        let bin_dir = tempfile::Builder::new()
            .prefix("cordon-e2e-bin-")
            .tempdir()
            .unwrap();
        let installed = bin_dir.path().join("cordon");
        copy_executable(&cordon_bin(), &installed).unwrap();
        let daemon =
            Daemon::start(DaemonOpts::new(&policies.path(), dns.addr()).bin(&installed)).unwrap();
        Upgrade {
            _ns: ns,
            http,
            _dns: dns,
            _policies: policies,
            daemon,
            _bin_dir: bin_dir,
            installed,
            stop_dir: world_writable_dir().unwrap(),
        }
    }

    fn stop_file(&self) -> PathBuf {
        self.stop_dir.path().join("stop")
    }

    fn start_loop(&self) -> Child {
        let timeout = REQUEST_TIMEOUT_S.to_string();
        let stop = self.stop_file();
        let args = [PYTHON, "-c", LOOP, stop.to_str().unwrap(), &timeout, MARKER];
        agent_command(&self.daemon, "looper", &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn allowed_received(&self) -> usize {
        self.http
            .received()
            .iter()
            .filter(|r| r.host.as_deref() == Some("allowed.test"))
            .count()
    }

    fn wait_for_allowed(&self, n: usize) {
        wait_until(
            "allowed requests to arrive",
            Duration::from_secs(30),
            || self.allowed_received() >= n,
        )
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.daemon.log()));
    }

    /// Writes the new binary beside the installed one and renames it over, as dpkg does.
    fn install_new_binary(&self) {
        let staged = self.installed.with_file_name("cordon.dpkg-new");
        copy_executable(&cordon_bin(), &staged).unwrap();
        std::fs::rename(&staged, &self.installed).unwrap();
    }

    /// Ends the loop and returns its lines' outcomes, counted by kind.
    fn finish_loop(&self, mut child: Child) -> Outcomes {
        std::fs::write(self.stop_file(), b"").unwrap();
        let status = wait_child(&mut child, Duration::from_secs(3 * REQUEST_TIMEOUT_S)).unwrap();
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            status.is_some_and(|s| s.success()),
            "the agent loop did not end cleanly ({status:?}): {err}\n{out}"
        );
        Outcomes::parse(&out)
    }

    fn assert_nothing_denied_arrived(&self) {
        let leaked: Vec<_> = self
            .http
            .received()
            .into_iter()
            .filter(|r| r.path.contains(MARKER) || r.host.as_deref() == Some("denied.test"))
            .map(|r| r.path)
            .collect();
        assert!(
            leaked.is_empty(),
            "denied requests reached the upstream: {leaked:?}"
        );
    }

    fn assert_audit_verifies(&self) {
        let out = self.daemon.cordon(&["audit", "verify"]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with("ok: "),
            "audit verify across the upgrade: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every request's outcome, by kind, and the slowest.
#[derive(Debug, Default)]
struct Outcomes {
    allowed: BTreeMap<String, usize>,
    denied: BTreeMap<String, usize>,
    slowest_ms: u64,
}

impl Outcomes {
    fn parse(out: &str) -> Outcomes {
        let mut o = Outcomes::default();
        for line in out.lines() {
            let mut f = line.split(' ');
            let (Some(kind), Some(outcome), Some(ms)) = (f.next(), f.next(), f.next()) else {
                panic!("unexpected agent line {line:?}");
            };
            let map = match kind {
                "allowed" => &mut o.allowed,
                "denied" => &mut o.denied,
                _ => panic!("unexpected agent line {line:?}"),
            };
            *map.entry(outcome.to_string()).or_default() += 1;
            o.slowest_ms = o.slowest_ms.max(ms.parse().unwrap());
        }
        o
    }

    fn allowed_ok(&self) -> usize {
        self.allowed.get("status-200").copied().unwrap_or(0)
    }
}

/// The agent's cgroup namespace under the cgroup2 mount: its pin directory's parent name.
fn namespace_of(pid: u32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::/"))
        .unwrap_or_else(|| panic!("no cgroup2 line in {cg}"));
    path.split('/').next().unwrap().to_string()
}

fn pin_root(namespace: &str) -> PathBuf {
    Path::new("/sys/fs/bpf").join(namespace)
}

#[test]
fn upgrade_in_place_hands_over_the_sockets_and_refuses_no_allowed_request() {
    require_root_or_skip!();
    let u = Upgrade::start();
    let pid = u.daemon.pid().unwrap();
    let child = u.start_loop();
    u.wait_for_allowed(4);

    u.install_new_binary();
    let exe = format!("/proc/{pid}/exe");
    let before = std::fs::read_link(&exe).unwrap();
    assert!(
        before.to_string_lossy().ends_with(" (deleted)"),
        "the running file was not replaced: {}",
        before.display()
    );
    // As the package's postinst does: `cordon upgrade` signals the daemon
    // (SIGUSR2) and returns once the new image serves.
    let up = u
        .daemon
        .cordon_with_timeout(&["upgrade"], Duration::from_secs(90))
        .unwrap();
    let said = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        up.status.success() && said.contains(&format!("pid {pid} now runs cordon")),
        "cordon upgrade: {said}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    u.daemon
        .wait_for_log(
            "adopted the listeners of the binary this one replaced",
            Duration::from_secs(30),
        )
        .unwrap();
    let at_upgrade = u.allowed_received();
    u.wait_for_allowed(at_upgrade + 6);
    // Same process, now running the installed file.
    assert_eq!(std::fs::read_link(&exe).unwrap(), u.installed);
    let outcomes = u.finish_loop(child);
    eprintln!("in-place upgrade, agent outcomes: {outcomes:?}");

    u.assert_nothing_denied_arrived();
    let allowed: usize = outcomes.allowed.values().sum();
    assert_eq!(
        outcomes.allowed_ok(),
        allowed,
        "an allowed request failed during an in-place upgrade: {outcomes:?}"
    );
    assert!(
        outcomes.denied.keys().all(|k| k == "status-403"),
        "{outcomes:?}"
    );
    assert!(
        outcomes.slowest_ms < REQUEST_TIMEOUT_S * 1000,
        "{outcomes:?}"
    );
    u.assert_audit_verifies();
}

#[test]
fn stop_and_start_across_a_map_abi_change_fails_closed_then_releases_the_old_programs() {
    require_root_or_skip!();
    let mut u = Upgrade::start();
    let child = u.start_loop();
    u.wait_for_allowed(4);
    let namespace = namespace_of(child.id());
    let root = pin_root(&namespace);
    let current = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert_eq!(current.len(), 1, "pin dirs: {current:?}");
    let own_version: u32 = current[0].trim_start_matches('v').parse().unwrap();

    u.install_new_binary();
    u.daemon.stop().unwrap();
    let during_gap = u.allowed_received();
    // The old daemon's real pins stand for those of another map ABI version.
    let old = root.join(format!("v{}", own_version + 100));
    std::fs::rename(root.join(&current[0]), &old).unwrap();
    assert!(old.join("link_cordon_connect4").exists());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        u.allowed_received(),
        during_gap,
        "traffic went through with no daemon running"
    );

    u.daemon.restart().unwrap();
    // Traffic only resumes once the old programs (still refusing, their ports zeroed) are gone.
    u.wait_for_allowed(during_gap + 4);
    assert!(!old.exists(), "the other version's pins were not released");
    assert!(root.join(&current[0]).join("link_cordon_connect4").exists());
    let outcomes = u.finish_loop(child);
    eprintln!("stop/start upgrade, agent outcomes: {outcomes:?}");

    u.assert_nothing_denied_arrived();
    let unclean: Vec<_> = outcomes
        .allowed
        .keys()
        .filter(|k| *k != "status-200" && !CLEAN_FAILURES.contains(&k.as_str()))
        .collect();
    assert!(
        unclean.is_empty(),
        "allowed requests ended badly: {outcomes:?}"
    );
    assert!(
        outcomes
            .denied
            .keys()
            .all(|k| k == "status-403" || CLEAN_FAILURES.contains(&k.as_str())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.slowest_ms < REQUEST_TIMEOUT_S * 1000,
        "{outcomes:?}"
    );
    assert!(outcomes.allowed_ok() >= 8, "{outcomes:?}");
    u.assert_audit_verifies();
}
