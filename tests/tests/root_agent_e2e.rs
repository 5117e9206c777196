//! Root agents (issue 20): an agent run with `--allow-root` tries every
//! way a real uid 0 would use to undo Cordon: leave its cgroup, rewrite its
//! policy, read the vault key and CA key, write the pinned BPF objects, and
//! signal or trace the daemon. Each must fail, and the marker must stay
//! unseen, the policy unchanged and the secrets unread; ordinary root work
//! inside the agent's own namespace still works.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cordon_e2e::daemon::Daemon;
use cordon_e2e::host::{
    ATTEMPT_PRELUDE, HostSharedMemory, HostUser, InheritedSocket, LoopDevice, OtherTerminal,
    agent_as, contained_ps_row, outcomes,
};
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{POLICY_FILE, PYTHON, show, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip, run_with_timeout};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Denies everything; the attacks try to turn `port == 1` into "anything".
const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "only-port-1"
action = "tcp.connect"
when = 'params.port == 1'
cidrs = ["127.0.0.0/8"]
decision = "allow"
"#;

const ATTACKS: &str = r#"
res["uid"] = os.getuid()
# Leave the cordon: every cgroup.procs / cgroup.threads there is.
moved = []
for root, dirs, files in os.walk("/sys/fs/cgroup"):
    for name in ("cgroup.procs", "cgroup.threads"):
        if name in files:
            p = os.path.join(root, name)
            try:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))
                moved.append(p)
            except OSError:
                pass
res["migrated"] = moved
# A fresh, writable cgroup2 view would be the way out of the read-only one.
os.makedirs(os.environ["TMPDIR"] + "/cg", exist_ok=True)
res["mount"] = os.system("mount -t cgroup2 none " + os.environ["TMPDIR"] + "/cg 2>/dev/null") != 0
res["cgroup"] = open("/proc/self/cgroup").read().strip()
# Rewrite the policy: edit, replace, add.
pol = cfg["policy"]
def edit():
    with open(pol, "a") as f:
        f.write("\n# " + cfg["marker"] + "\n")
    return "edited"
def replace():
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "p.toml")
    with open(tmp, "w") as f:
        f.write('agents = ["*"]\ndefault = "allow"\n')
    os.replace(tmp, pol)
    return "replaced"
def add():
    with open(os.path.join(os.path.dirname(pol), "zz-open.toml"), "w") as f:
        f.write('agents = ["*"]\ndefault = "allow"\n')
    return "added"
attempt("policy_edit", edit)
attempt("policy_replace", replace)
attempt("policy_add", add)
attempt("policy_chmod", lambda: os.chmod(pol, 0o666) or "chmod")
attempt("vault_key", lambda: read(cfg["state"] + "/vault.key"))
attempt("vault_db", lambda: read(cfg["state"] + "/cordon.redb"))
attempt("ca_key", lambda: read(cfg["state"] + "/ca/ca.key"))
attempt("kill_marks", lambda: read(cfg["state"] + "/kills.json"))
attempt("owned", lambda: read(cfg["owned"]))
pins = []
for root, dirs, files in os.walk(cfg["pins"]):
    for name in files:
        p = os.path.join(root, name)
        for how, f in (("write", lambda: open(p, "wb").write(b"x")), ("unlink", lambda: os.unlink(p))):
            try:
                f()
                pins.append(how + " " + p)
            except OSError:
                pass
res["pins_touched"] = pins
libc = ctypes.CDLL(None, use_errno=True)
def ptrace(pid):
    if libc.ptrace(16, pid, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, 0, 0)
    return "attached"
attempt("daemon_ptrace", lambda: ptrace(cfg["daemon"]))
attempt("daemon_fds", lambda: steal_fds(cfg["daemon"]))
attempt("daemon_signal", lambda: os.kill(cfg["daemon"], 9) or "killed")
attempt("daemon_environ", lambda: read(f"/proc/{cfg['daemon']}/environ"))
attempt("daemon_cmdline", lambda: read(f"/proc/{cfg['daemon']}/cmdline"))
attempt("daemon_listed", lambda: listed(cfg["daemon"]))
attempt("sysv_shm", lambda: sysv_shm(cfg["sysv_key"]))
attempt("posix_shm", lambda: read(cfg["posix_shm"]))
attempt("other_terminal", lambda: read_tty(cfg["other_terminal"]))
attempt("raw_device", lambda: read(cfg["raw_device"])[:64].split("\0")[0])
attempt("vsock", vsock)
attempt("io_uring", io_uring)
# Root's host-wide powers that Landlock does not govern. Each probe leaves
# the host as it was if it works: the clock keeps the tick it had, the audit
# status is only read, the priority is the agent's own.
import struct
def clock():
    timex = ctypes.create_string_buffer(256)
    if libc.adjtimex(timex) < 0:
        raise OSError(ctypes.get_errno(), "adjtimex")
    struct.pack_into("=I", timex, 0, 0x4000)  # ADJ_TICK
    if libc.adjtimex(timex) < 0:
        raise OSError(ctypes.get_errno(), "adjtimex ADJ_TICK")
    return "set the clock's tick"
def audit_control():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    s.settimeout(3)
    s.sendto(struct.pack("=IHHII", 16, 1000, 5, 1, 0), (0, 0))  # AUDIT_GET, request + ack
    reply = s.recv(65536)
    if struct.unpack_from("=H", reply, 4)[0] == 2:  # NLMSG_ERROR
        err = struct.unpack_from("=i", reply, 16)[0]
        if err < 0:
            raise OSError(-err, "AUDIT_GET")
    return "read the audit status"
attempt("clock", clock)
attempt("audit_control", audit_control)
attempt("nice", lambda: os.setpriority(os.PRIO_PROCESS, 0, -5) or "raised its priority")
res["caps"] = dict(l.split(":\t") for l in read("/proc/self/status").splitlines() if l.startswith("Cap"))
time.sleep(cfg["reload_wait"])
# Through the (unchanged) policy: the sink's port stays denied, so the
# connect lands on Cordon's proxy, which refuses it: the marker never arrives.
def send():
    s = socket.create_connection(("127.0.0.1", cfg["sink_port"]), timeout=3)
    s.sendall(cfg["marker"].encode())
    time.sleep(0.3)
    s.close()
    return "sent"
attempt("send", send)
print(json.dumps(res))
"#;

fn root_agent(d: &Daemon, name: &str, cwd: &Path, cmd: &[&str]) -> Command {
    let mut c = Command::new(cordon_bin());
    c.args(["run", "--agent", name, "--state-dir"])
        .arg(d.state_dir())
        .args(["--allow-root", "--"])
        .args(cmd)
        .current_dir(cwd)
        .env_remove("SUDO_UID");
    c
}

fn pin_dir(d: &Daemon) -> PathBuf {
    // The daemon names its bpffs directory after its state dir; it is the
    // one directory under /sys/fs/bpf holding this daemon's pins.
    let status = cordon_e2e::world::status_json(d).unwrap();
    let parent = status["cgroup_parent"].as_str().unwrap().to_string();
    let ns = Path::new(&parent).file_name().unwrap().to_owned();
    Path::new("/sys/fs/bpf").join(ns)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_root_agent_cannot_leave_rewrite_its_policy_read_secrets_touch_pins_or_reach_the_daemon() {
    require_root_or_skip!();
    battery(None, "mapped");
}

/// Hosts that forbid user namespaces (a container's seccomp profile, say)
/// get the fallback: real uid 0 without its dangerous capabilities, held
/// by Landlock and the cgroup hooks alone. The same attacks must fail.
#[test]
fn without_user_namespaces_a_root_agent_is_held_by_landlock_alone() {
    require_root_or_skip!();
    battery(None, "landlock-only");
}

/// A seccomp filter, as container runtimes install, that refuses to
/// create user namespaces: `unshare` and `clone` with CLONE_NEWUSER get
/// EPERM, `clone3` (whose flags a filter cannot see) gets ENOSYS so libc
/// falls back to `clone`.
fn forbid_user_namespaces(cmd: &mut Command) {
    const CLONE_NEWUSER: u32 = 0x1000_0000;
    let ret_errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA);
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let filter: Vec<libc::sock_filter> = vec![
        stmt(ld, 0), // seccomp_data.nr
        jeq(libc::SYS_clone3 as u32, 0, 1),
        stmt(ret, ret_errno(libc::ENOSYS)),
        jeq(libc::SYS_unshare as u32, 1, 0),
        jeq(libc::SYS_clone as u32, 0, 4),
        stmt(ld, 16), // args[0], low 32 bits
        stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, CLONE_NEWUSER),
        jeq(0, 1, 0),
        stmt(ret, ret_errno(libc::EPERM)),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: prctl with a filter that lives until exec; runs between fork
    // and exec in the child, and only calls async-signal-safe prctl.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const prog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The same attacks from a regular user who owns a file inside Cordon's
/// state directory: ownership gives it nothing there.
#[test]
fn a_user_agent_owning_files_next_to_cordons_gets_no_further_than_root() {
    require_root_or_skip!();
    battery(Some(HostUser::regular().unwrap()), "");
}

fn battery(user: Option<HostUser>, root_mode: &str) {
    cordon_e2e::host::host_makes_vsock_and_io_uring();
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let policy_path = policies.path().join(POLICY_FILE);
    let policy_before = std::fs::read(&policy_path).unwrap();
    let pins = pin_dir(&daemon);
    let pins_before = files_under(&pins);
    assert!(!pins_before.is_empty(), "no pins under {}", pins.display());
    let sink = InheritedSocket::connect().unwrap();
    let sink_port = sink.client.peer_addr().unwrap().port();
    let marker = format!("MARKER-{}", random_alnum(24));
    let work = match &user {
        Some(u) => u.workdir().unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    // A file of the user's own, next to the vault key.
    let owned = daemon.state_dir().join("notes.txt");
    std::fs::write(&owned, &marker).unwrap();
    if let Some(u) = &user {
        cordon_e2e::host::chown(&owned, u.uid, u.gid).unwrap();
    }

    // Host shared memory holding the marker, outside every agent.
    let shm = HostSharedMemory::plant(&marker).unwrap();
    // The operator's other login: root's own terminal, or the user's.
    let (tty_uid, tty_gid) = user.as_ref().map_or((0, 0), |u| (u.uid, u.gid));
    let other = OtherTerminal::open(tty_uid, tty_gid, &marker).unwrap();
    // A disk of root's (or the user's), holding the marker.
    let disk = LoopDevice::with(&marker, tty_uid, tty_gid).unwrap();
    let cfg = json!({
        "sysv_key": shm.sysv_key,
        "posix_shm": shm.posix_path,
        "other_terminal": other.slave_path,
        "raw_device": disk.path,
        "owned": owned,
        "marker": marker,
        "policy": policy_path,
        "state": daemon.state_dir(),
        "pins": pins,
        "daemon": daemon.pid().unwrap(),
        "sink_port": sink_port,
        "reload_wait": 3,
    })
    .to_string();
    let script = format!("{ATTEMPT_PRELUDE}{ATTACKS}");
    let argv = [PYTHON, "-c", script.as_str(), &cfg];
    let mut cmd = match &user {
        None if root_mode == "landlock-only" => {
            let mut c = root_agent(&daemon, "rooty", work.path(), &argv);
            forbid_user_namespaces(&mut c);
            c
        }
        None => root_agent(&daemon, "rooty", work.path(), &argv),
        Some(u) => agent_as(&daemon, u, "rooty", work.path(), &argv),
    };
    let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let res = outcomes(&out);

    let uid = user.as_ref().map_or(0, |u| u.uid);
    assert_eq!(res["uid"], uid, "the agent runs as {uid}: {res}");
    assert_eq!(res["migrated"], json!([]), "the agent moved itself: {res}");
    assert_eq!(
        res["mount"],
        json!(true),
        "the agent mounted cgroup2: {res}"
    );
    for attack in [
        "policy_edit",
        "policy_replace",
        "policy_add",
        "policy_chmod",
        "vault_key",
        "vault_db",
        "ca_key",
        "kill_marks",
        "owned",
        "daemon_ptrace",
        "daemon_fds",
        "daemon_signal",
        "daemon_environ",
        "daemon_cmdline",
        "daemon_listed",
        "sysv_shm",
        "posix_shm",
        "other_terminal",
        "raw_device",
        "vsock",
        "io_uring",
        "clock",
        "audit_control",
        "nice",
    ] {
        assert_eq!(
            res[attack]["ok"],
            json!(false),
            "{attack} was not refused: {res}"
        );
    }
    assert_eq!(res["pins_touched"], json!([]), "{res}");
    if root_mode == "landlock-only" {
        // CAP_CHOWN, FOWNER, FSETID, KILL, SETGID, SETUID, NET_BIND_SERVICE
        // and SYS_CHROOT: bits 0, 3-7, 10 and 18.
        const ROOT_WORK: &str = "00000000000404f9";
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            assert_eq!(res["caps"][set], ROOT_WORK, "{set}: {res}");
        }
        for set in ["CapInh", "CapAmb"] {
            assert_eq!(res["caps"][set], "0000000000000000", "{set}: {res}");
        }
    }
    assert!(
        !format!("{res}").contains("PRIVATE KEY"),
        "a key was read: {res}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !sink.received.contains(&marker),
        "the marker reached the sink"
    );
    assert_eq!(
        std::fs::read(&policy_path).unwrap(),
        policy_before,
        "the policy changed"
    );
    assert!(
        !policies.path().join("zz-open.toml").exists(),
        "a policy file was added"
    );
    assert_eq!(files_under(&pins), pins_before, "the pins changed");
    assert!(
        cordon_e2e::world::status_json(&daemon).is_ok(),
        "the daemon is gone"
    );

    let policy_dir = policy_path.parent().unwrap();
    // Landlock's refusals reach the daemon through the kernel's audit socket, after the
    // agent's calls returned: wait for the ones asserted below (bounded). The replace's
    // refused `remove` comes before the add's `create`: waiting for any change in the
    // directory read the trail too early.
    let t =
        cordon_e2e::read_trail_when(daemon.state_dir(), "rooty", Duration::from_secs(10), |t| {
            t.has(
                "file.change",
                &[("how", json!("create")), ("path", json!(policy_dir))],
            ) && t.has("mount", &[("blocker", json!("fs.change_topology"))])
                && (user.is_none() || t.has("file.open", &[("path", json!(owned))]))
        })
        .unwrap();
    let launch = t.one("agent.launch", &[("contain", json!("on"))]);
    if user.is_none() {
        assert_eq!(launch.params["root"], json!(root_mode), "{t}");
        if root_mode == "mapped" {
            assert_eq!(launch.params["mapped_uid"], json!(65534), "{t}");
        }
    } else {
        // The user's own file inside the state dir is carved out by
        // containment, not by ownership: the refusal is on the record.
        assert!(
            t.has(
                "file.open",
                &[("path", json!(owned)), ("mode", json!("read"))]
            ),
            "no record of the read next to the vault key:\n{t}"
        );
    }
    // Creating a file in the policy directory (the add, and the replace's
    // temporary file) is refused by Landlock, which comes before file
    // ownership for creations, so it is on the record. An in-place edit,
    // and signals or ptrace aimed at the daemon, are refused by ownership
    // and user-namespace checks before any LSM sees them: they fail, as
    // asserted above, but the kernel reports them to no one.
    assert!(
        t.has(
            "file.change",
            &[("how", json!("create")), ("path", json!(policy_dir))]
        ),
        "no record of the attempt to add a policy file:\n{t}"
    );
    // Mounting a fresh cgroup2 view to escape the read-only one is refused
    // by Landlock and recorded.
    assert!(
        t.has("mount", &[("blocker", json!("fs.change_topology"))]),
        "no record of the mount attempt:\n{t}"
    );
    drop(policies);
}

#[test]
fn a_root_agent_still_does_root_work_in_its_own_namespace() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let work = tempfile::tempdir().unwrap();
    // A package installed into a scratch root the agent owns: dpkg insists
    // on uid 0 and chowns what it unpacks to root.
    let deb = build_deb(work.path());
    let script = format!(
        "set -e; R=$TMPDIR/scratch; mkdir -p $R/var/lib/dpkg/info $R/var/lib/dpkg/updates; \
         touch $R/var/lib/dpkg/status; \
         dpkg --root=$R --log=/dev/null --force-script-chrootless --force-not-root --force-bad-path -i {deb}; \
         cat $R/opt/cordon-hello/hello; \
         python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); print(\"bound\", s.getsockname()[1] > 1024)'; \
         id -u",
        deb = deb.display()
    );
    let mut cmd = root_agent(
        &daemon,
        "rootwork",
        work.path(),
        &["/bin/sh", "-c", &script],
    );
    let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hello from a scratch root"), "{}", show(&out));
    assert!(text.contains("bound True"), "{}", show(&out));
    assert_eq!(text.lines().last(), Some("0"), "{}", show(&out));

    // `cordon ps` shows which agents run as mapped root.
    let mut sleeper = root_agent(&daemon, "rootwork", work.path(), &["/bin/sleep", "30"]);
    sleeper
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let running = cordon_e2e::agent_cgroup::RunningAgent::new(sleeper.spawn().unwrap());
    let parent = cordon_e2e::world::status_json(&daemon).unwrap()["cgroup_parent"]
        .as_str()
        .unwrap()
        .to_string();
    // The supervisor is the process `cordon run` started; it moves first.
    running.instance_cgroup(Path::new(&parent)).unwrap();
    let row = contained_ps_row(&daemon, "rootwork");
    assert!(row.contains(" mapped "), "mapped root is not shown: {row}");
}

/// A minimal .deb with one file, built with dpkg-deb.
fn build_deb(dir: &Path) -> PathBuf {
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("opt/cordon-hello")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: cordon-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: e2e <e2e@test>\nDescription: test\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("opt/cordon-hello/hello"),
        "hello from a scratch root\n",
    )
    .unwrap();
    let deb = dir.join("cordon-hello.deb");
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    deb
}

#[test]
fn a_policy_file_owned_by_a_user_is_refused_and_the_previous_policy_stays() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let version = cordon_e2e::world::status_json(&daemon).unwrap()["policy_version"].clone();
    let user = HostUser::regular().unwrap();
    let planted = policies.path().join("open.toml");
    std::fs::write(&planted, "agents = [\"*\"]\ndefault = \"allow\"\n").unwrap();
    cordon_e2e::host::chown(&planted, user.uid, user.gid).unwrap();
    let out = daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open.toml") && err.contains("not root"),
        "{err}"
    );
    assert_eq!(
        cordon_e2e::world::status_json(&daemon).unwrap()["policy_version"],
        version,
        "the policy in force changed"
    );
}
