//! Host containment, end to end (issue 13): a real daemon, real agents in
//! real cgroups under Landlock and the BPF LSM programs, run both as
//! `nobody` and as a regular user who owns the secrets. Every attack plants
//! a marker and asserts it never reached its sink; every refusal the kernel
//! can attribute is checked in the audit trail.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use cordon_e2e::daemon::Daemon;
use cordon_e2e::host::{
    ATTEMPT_PRELUDE, HostSharedMemory, HostUser, InheritedSocket, LoopDevice, OtherTerminal,
    UnixSink, Victim, agent_as, contained_ps_row, host_makes_vsock_and_io_uring, outcomes,
};
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{PYTHON, show, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip, run_with_timeout, wait_until};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Each attack in one python run; prints one JSON object of outcomes.
const ATTACKS: &str = r#"
def unix(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(addr)
    s.sendall(cfg["marker"].encode())
    s.close()
    return "sent"
def write_outside():
    with open(os.path.join(cfg["outside"], "leak.txt"), "w") as f:
        f.write(cfg["marker"])
    return "written"
libc = ctypes.CDLL(None, use_errno=True)
def ptrace_attach(pid):
    if libc.ptrace(16, pid, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, 0, 0)
    return "attached"
pid = cfg["victim"]
attempt("credential", lambda: read(cfg["credential"]))
attempt("environ", lambda: read(f"/proc/{pid}/environ"))
attempt("mem", lambda: read(f"/proc/{pid}/mem")[:10])
attempt("cmdline", lambda: read(f"/proc/{pid}/cmdline"))
attempt("status", lambda: read(f"/proc/{pid}/status"))
attempt("listing", lambda: listed(pid))
attempt("own_listing", lambda: listed(os.getpid()))
attempt("sysv_shm", lambda: sysv_shm(cfg["sysv_key"]))
attempt("posix_shm", lambda: read(cfg["posix_shm"]))
attempt("other_terminal", lambda: read_tty(cfg["other_terminal"]))
attempt("raw_device", lambda: read(cfg["raw_device"])[:64].split("\0")[0])
attempt("ptrace", lambda: ptrace_attach(pid))
attempt("vm_read", lambda: vm_read(pid, cfg["victim_addr"]))
attempt("steal_fds", lambda: steal_fds(pid))
attempt("signal", lambda: os.kill(pid, signal.SIGTERM) or "sent")
attempt("unix_path", lambda: unix(cfg["unix_path"]))
attempt("unix_abstract", lambda: unix("\0" + cfg["abstract"]))
attempt("inherited_fd", lambda: os.write(3, cfg["marker"].encode()) and "sent")
attempt("write_outside", write_outside)
attempt("vsock", vsock)
attempt("io_uring", io_uring)
attempt("vault_key", lambda: read(cfg["state"] + "/vault.key"))
attempt("ca_key", lambda: read(cfg["state"] + "/ca/ca.key"))
print(json.dumps(res))
"#;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

/// Fields drop in order: the daemon stops before its policies and DNS go.
struct Fixture {
    daemon: Daemon,
    policies: cordon_e2e::PolicyDir,
    _dns: TestDns,
    owner: HostUser,
    marker: String,
    credential: std::path::PathBuf,
}

fn fixture(policy: &str) -> Fixture {
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, policy).unwrap();
    let owner = HostUser::regular().unwrap();
    let marker = format!("MARKER-{}", random_alnum(24));
    let credential = owner.plant_aws_credentials(&marker).unwrap();
    Fixture {
        _dns: dns,
        policies,
        daemon,
        owner,
        marker,
        credential,
    }
}

/// Hands `fd` to the launched `cordon run` as descriptor 3.
fn inherit_as_fd3(cmd: &mut Command, fd: i32) {
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn refused(res: &Value, name: &str) -> bool {
    res[name]["ok"] == json!(false)
}

/// Precondition: outside any agent, a process of the agent's user reads the
/// victim's marker through `process_vm_readv` and `pidfd_getfd`, so their
/// refusal below is Cordon's doing.
fn host_reads_the_victims_memory_and_descriptors(user: &HostUser, victim: &Victim, marker: &str) {
    const STEAL: &str = r#"
pid = cfg["victim"]
attempt("vm_read", lambda: vm_read(pid, cfg["victim_addr"]))
attempt("steal_fds", lambda: steal_fds(pid))
print(json.dumps(res))
"#;
    let cfg = json!({"victim": victim.pid(), "victim_addr": victim.secret_addr()}).to_string();
    let out = Command::new(PYTHON)
        .args(["-c", &format!("{ATTEMPT_PRELUDE}{STEAL}"), &cfg])
        .uid(user.uid)
        .gid(user.gid)
        .current_dir("/")
        .output()
        .unwrap();
    let res = outcomes(&out);
    for attack in ["vm_read", "steal_fds"] {
        assert!(
            res[attack]["out"]
                .as_str()
                .is_some_and(|o| o.contains(marker)),
            "precondition: outside an agent, {attack} should read the victim's marker: {res}"
        );
    }
}

fn attacks_as(agent_user: &HostUser) {
    host_makes_vsock_and_io_uring();
    let f = fixture(POLICY);
    let victim_user = agent_user.clone();
    let mut victim = Victim::start(&victim_user, &f.marker).unwrap();
    host_reads_the_victims_memory_and_descriptors(agent_user, &victim, &f.marker);
    let shm = HostSharedMemory::plant(&f.marker).unwrap();
    // The operator's other login, on a terminal the agent's user owns.
    let other = OtherTerminal::open(agent_user.uid, agent_user.gid, &f.marker).unwrap();
    // A disk handed to the agent's user, holding the marker.
    let disk = LoopDevice::with(&f.marker, agent_user.uid, agent_user.gid).unwrap();
    let path_sink = UnixSink::pathname("host.sock").unwrap();
    let abstract_name = format!("cordon-e2e-{}", random_alnum(10));
    let abstract_sink = UnixSink::abstract_name(&abstract_name).unwrap();
    let inherited = InheritedSocket::connect().unwrap();
    let outside = cordon_e2e::world::world_writable_dir().unwrap();
    let work = agent_user.workdir().unwrap();

    let cfg = json!({
        "marker": f.marker,
        "victim": victim.pid(),
        "victim_addr": victim.secret_addr(),
        "sysv_key": shm.sysv_key,
        "posix_shm": shm.posix_path,
        "other_terminal": other.slave_path,
        "raw_device": disk.path,
        "credential": f.credential,
        "unix_path": path_sink.path.as_ref().unwrap(),
        "abstract": abstract_name,
        "outside": outside.path(),
        "state": f.daemon.state_dir(),
    })
    .to_string();
    let mut cmd = agent_as(
        &f.daemon,
        agent_user,
        "intruder",
        work.path(),
        &[PYTHON, "-c", &format!("{ATTEMPT_PRELUDE}{ATTACKS}"), &cfg],
    );
    inherit_as_fd3(&mut cmd, inherited.client.as_raw_fd());
    let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let res = outcomes(&out);

    for attack in [
        "credential",
        "environ",
        "mem",
        "cmdline",
        "status",
        "listing",
        "sysv_shm",
        "posix_shm",
        "other_terminal",
        "raw_device",
        "ptrace",
        "vm_read",
        "steal_fds",
        "signal",
        "unix_path",
        "unix_abstract",
        "inherited_fd",
        "write_outside",
        "vsock",
        "io_uring",
        "vault_key",
        "ca_key",
    ] {
        assert!(refused(&res, attack), "{attack} was not refused: {res}");
    }
    assert_eq!(
        res["own_listing"]["out"],
        json!("listed"),
        "the agent cannot see itself in /proc: {res}"
    );
    let everything = format!("{res}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !everything.contains(&f.marker),
        "the marker reached the agent: {everything}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !path_sink.received.contains(&f.marker),
        "marker reached the pathname socket"
    );
    assert_eq!(
        path_sink.received.connections(),
        0,
        "the pathname socket was connected"
    );
    assert!(
        !abstract_sink.received.contains(&f.marker),
        "marker reached the abstract socket"
    );
    assert_eq!(
        abstract_sink.received.connections(),
        0,
        "the abstract socket was connected"
    );
    assert!(
        !inherited.received.contains(&f.marker),
        "marker left through the inherited socket"
    );
    assert!(
        !outside.path().join("leak.txt").exists(),
        "the agent wrote outside its paths"
    );
    assert!(
        victim.is_alive(),
        "the agent signalled a process outside it"
    );

    let t = cordon_e2e::read_trail_when(
        f.daemon.state_dir(),
        "intruder",
        Duration::from_secs(10),
        |t| {
            t.has("file.open", &[("path", json!(f.credential))])
                && t.has("unix.connect", &[("abstract", json!(abstract_name))])
                && t.has("file.change", &[("path", json!(outside.path()))])
                && t.has("process.access", &[("target_pid", json!(victim.pid()))])
        },
    )
    .unwrap();
    let cred = t.one("file.open", &[("path", json!(f.credential))]);
    assert_eq!(cordon_e2e::trail::verdict(cred), "deny", "{t}");
    assert_eq!(cordon_e2e::trail::rule(cred), "contain:credentials", "{t}");
    // The calling process, from the kernel's record of the same event.
    assert!(
        cred.exe.as_deref().is_some_and(|e| e.contains("python")) && cred.pid.is_some(),
        "the refusal does not name the process: {cred:?}"
    );
    assert_eq!(cred.uid, Some(agent_user.uid), "{cred:?}");
    let sock = t.one(
        "unix.connect",
        &[("path", json!(path_sink.path.as_ref().unwrap()))],
    );
    assert_eq!(cordon_e2e::trail::rule(sock), "contain:unix", "{t}");
    assert!(
        t.has("unix.connect", &[("abstract", json!(abstract_name))]),
        "no record of the abstract socket refusal:\n{t}"
    );
    let proc_records = t.matching("process.access", &[("target_pid", json!(victim.pid()))]);
    assert!(
        !proc_records.is_empty(),
        "no process.access refusal recorded:\n{t}"
    );
    assert!(
        proc_records
            .iter()
            .any(|r| r.params.get("how") == Some(&json!("signal"))),
        "the signal was not recorded:\n{t}"
    );
    // Landlock names the directory a file was to be created in.
    assert!(
        t.has(
            "file.change",
            &[("how", json!("create")), ("path", json!(outside.path()))]
        ),
        "the write outside was not recorded:\n{t}"
    );
}

#[test]
fn an_agent_running_as_nobody_reaches_no_secret_process_socket_or_inherited_descriptor() {
    require_root_or_skip!();
    attacks_as(&HostUser::nobody());
}

#[test]
fn an_agent_running_as_the_user_who_owns_the_secrets_reaches_none_of_them_either() {
    require_root_or_skip!();
    attacks_as(&HostUser::regular().unwrap());
}

const LEGIT: &str = r#"
import ctypes, json, os, socket, subprocess, sys, tempfile
cfg = json.loads(sys.argv[1])
res = {}
with open("notes.txt", "w") as f:
    f.write("kept")
res["cwd"] = open("notes.txt").read()
fd, p = tempfile.mkstemp()
os.write(fd, b"tmp"); os.close(fd)
res["tmp"] = open(p).read()
res["tmpdir"] = os.path.dirname(p)
res["python"] = subprocess.run([sys.executable, "-c", "print(6*7)"], capture_output=True, text=True).stdout.strip()
res["node"] = subprocess.run(["node", "-e", "console.log(6*7)"], capture_output=True, text=True).stdout.strip()
res["git"] = subprocess.run(["git", "init", "-q", "repo"], capture_output=True, text=True).returncode
libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen(["sleep", "5"])
res["debug_child"] = libc.ptrace(16, child.pid, 0, 0)  # PTRACE_ATTACH
if res["debug_child"] == 0:
    # The attach stop, reported to the tracer. Left unread, Popen reads it as an exit, skips
    # the kill below, and the stopped child holds this script's stdout open after it ends.
    os.waitpid(child.pid, 0)
    libc.ptrace(17, child.pid, 0, 0)  # PTRACE_DETACH
os.kill(child.pid, 9); child.wait()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(cfg["allowed"]); s.sendall(b"hello-allowed"); s.close()
res["socket"] = "sent"
# Its own pseudo-terminals, shared memory and IPC work as on any host.
import pty
m, sl = pty.openpty()
os.write(m, b"ping\n")
res["pty"] = os.read(sl, 16).decode().strip()
with open("/dev/shm/cordon-e2e-own", "w") as f:
    f.write("shm")
res["posix_shm"] = open("/dev/shm/cordon-e2e-own").read()
os.unlink("/dev/shm/cordon-e2e-own")
shmid = libc.shmget(0, 4096, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
res["sysv_shm"] = "made" if shmid >= 0 else ctypes.get_errno()
libc.shmctl(shmid, 0, None)  # IPC_RMID
print(json.dumps(res))
"#;

#[test]
fn a_contained_agent_works_in_its_dirs_runs_tools_debugs_its_child_and_reaches_an_allowed_socket() {
    require_root_or_skip!();
    let allowed = UnixSink::pathname("allowed.sock").unwrap();
    let policy = format!(
        "{POLICY}\n[contain]\nunix_sockets = [\"{}\"]\n",
        allowed.path.as_ref().unwrap().display()
    );
    let f = fixture(&policy);
    for user in [HostUser::nobody(), f.owner.clone()] {
        let work = user.workdir().unwrap();
        let cfg = json!({"allowed": allowed.path.as_ref().unwrap()}).to_string();
        let mut cmd = agent_as(
            &f.daemon,
            &user,
            "worker",
            work.path(),
            &[PYTHON, "-c", LEGIT, &cfg],
        );
        let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
        assert!(out.status.success(), "as {}: {}", user.name, show(&out));
        let res = outcomes(&out);
        assert_eq!(res["cwd"], "kept", "{res}");
        assert_eq!(res["tmp"], "tmp", "{res}");
        assert_ne!(
            res["tmpdir"], "/tmp",
            "the agent got the shared /tmp: {res}"
        );
        assert_eq!(res["python"], "42", "{res}");
        assert_eq!(res["node"], "42", "{res}");
        assert_eq!(res["git"], 0, "{res}");
        assert_eq!(
            res["debug_child"], 0,
            "the agent could not debug its own child: {res}"
        );
        assert_eq!(res["pty"], "ping", "{res}");
        assert_eq!(res["posix_shm"], "shm", "{res}");
        assert_eq!(res["sysv_shm"], "made", "{res}");
        assert!(work.path().join("repo/.git").is_dir());
    }
    // The agent sent and closed before it printed; the sink's reader thread may still be
    // reading, so this waits for it (bounded) rather than sleeping a fixed time.
    wait_until(
        "the allowed socket to receive the agent's bytes",
        TIMEOUT,
        || allowed.received.contains("hello-allowed"),
    )
    .unwrap();
}

#[test]
fn preserve_fds_keeps_exactly_the_descriptors_it_names() {
    require_root_or_skip!();
    let f = fixture(POLICY);
    let user = HostUser::nobody();
    let work = user.workdir().unwrap();
    let send = "import os, sys; os.write(3, sys.argv[1].encode()); print('sent')";
    for (preserve, reaches) in [(false, false), (true, true)] {
        let inherited = InheritedSocket::connect().unwrap();
        let mut c = Command::new(cordon_bin());
        c.args(["run", "--agent", "fds", "--state-dir"])
            .arg(f.daemon.state_dir());
        if preserve {
            c.args(["--preserve-fds", "1"]);
        }
        c.args(["--user", "nobody", "--", PYTHON, "-c", send, &f.marker])
            .current_dir(work.path());
        inherit_as_fd3(&mut c, inherited.client.as_raw_fd());
        let out = run_with_timeout(&mut c, TIMEOUT).unwrap();
        assert_eq!(
            out.status.success(),
            reaches,
            "preserve={preserve}: {}",
            show(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            inherited.received.contains(&f.marker),
            reaches,
            "preserve={preserve}"
        );
    }
}

#[test]
fn a_network_socket_as_standard_output_is_refused_unless_allowed() {
    require_root_or_skip!();
    let f = fixture(POLICY);
    let work = HostUser::nobody().workdir().unwrap();
    for (allow, runs) in [(false, false), (true, true)] {
        let inherited = InheritedSocket::connect().unwrap();
        let mut c = Command::new(cordon_bin());
        c.args(["run", "--agent", "stdio", "--state-dir"])
            .arg(f.daemon.state_dir());
        if allow {
            c.arg("--allow-socket-stdio");
        }
        c.args(["--user", "nobody", "--", "/bin/echo", &f.marker])
            .current_dir(work.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::os::fd::OwnedFd::from(
                inherited.client.try_clone().unwrap(),
            ))
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let status = cordon_e2e::process::wait_child(&mut child, TIMEOUT)
            .unwrap()
            .expect("cordon run finished");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.success(), runs, "allow={allow}: {err}");
        if !allow {
            assert!(err.contains("standard output is a network socket"), "{err}");
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            inherited.received.contains(&f.marker),
            runs,
            "allow={allow}"
        );
    }
}

#[test]
fn contain_off_is_recorded_at_launch() {
    require_root_or_skip!();
    let mut f = fixture(&format!("{POLICY}\ncontain = \"off\"\n"));
    let user = HostUser::nobody();
    let work = user.workdir().unwrap();
    let read = format!("print(open('{}').read())", f.credential.display());
    let mut cmd = agent_as(
        &f.daemon,
        &user,
        "loose",
        work.path(),
        &[PYTHON, "-c", &read],
    );
    let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
    // Off means off: the world-readable file is read. The point is that it
    // is on the record.
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("containment is off"));
    let t = cordon_e2e::read_trail(f.daemon.state_dir())
        .unwrap()
        .of_chain("loose");
    let launch = t.one("agent.launch", &[("contain", json!("off"))]);
    assert_eq!(launch.params["contain_off_by"], json!("e2e.toml"), "{t}");

    // `cordon ps` says it loudly while such an agent runs.
    let mut sleeper = agent_as(
        &f.daemon,
        &user,
        "loose",
        work.path(),
        &["/bin/sleep", "30"],
    );
    sleeper
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let running = cordon_e2e::agent_cgroup::RunningAgent::new(sleeper.spawn().unwrap());
    let parent = cordon_e2e::world::status_json(&f.daemon).unwrap()["cgroup_parent"]
        .as_str()
        .unwrap()
        .to_string();
    running
        .instance_cgroup(std::path::Path::new(&parent))
        .unwrap();
    let row = contained_ps_row(&f.daemon, "loose");
    assert!(row.contains(" OFF "), "containment off is not shown: {row}");
    // A restarted daemon still knows.
    f.daemon.restart().unwrap();
    let ps = f.daemon.cordon(&["ps"]).unwrap();
    let text = String::from_utf8_lossy(&ps.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("loose "))
        .unwrap_or_else(|| panic!("no row for the agent after a restart:\n{text}"));
    assert!(row.contains(" OFF "), "lost across a restart: {row}");
    drop(running);
}

/// A sub-agent launched from inside an agent gets the intersection of
/// both containments: its own policy allows a socket its parent's does
/// not, and the parent's refusal still holds.
#[test]
fn a_sub_agent_is_held_by_its_parents_containment_too() {
    require_root_or_skip!();
    let both = UnixSink::pathname("both.sock").unwrap();
    let child_only = UnixSink::pathname("child-only.sock").unwrap();
    let a = both.path.clone().unwrap();
    let b = child_only.path.clone().unwrap();
    let policy = format!(
        "agents = [\"parent\"]\ndefault = \"deny\"\n[contain]\nunix_sockets = [\"{a}\"]\n",
        a = a.display()
    );
    let f = fixture(&policy);
    let child_policy = format!(
        "agents = [\"child\"]\ndefault = \"deny\"\n[contain]\nunix_sockets = [\"{a}\", \"{b}\"]\n",
        a = a.display(),
        b = b.display()
    );
    f.policies.write("child.toml", &child_policy).unwrap();
    let reload = f.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));

    let user = HostUser::nobody();
    let work = user.workdir().unwrap();
    let script = format!(
        "import os, signal, socket, sys\n\
         parent = int(sys.argv[1])\n\
         for name, f in (('parent_environ', lambda: open(f'/proc/{{parent}}/environ', 'rb').read()),\n\
         \x20               ('parent_signal', lambda: os.kill(parent, signal.SIGTERM))):\n\
         \x20   try:\n\
         \x20       f(); print(name, 'reached')\n\
         \x20   except OSError as e:\n\
         \x20       print(name, 'refused', e.errno)\n\
         for name, p in (('both', '{a}'), ('child_only', '{b}')):\n\
         \x20   s = socket.socket(socket.AF_UNIX)\n\
         \x20   try:\n\
         \x20       s.connect(p); s.sendall(b'hello'); print(name, 'connected')\n\
         \x20   except OSError as e:\n\
         \x20       print(name, 'refused', e.errno)\n",
        a = a.display(),
        b = b.display()
    );
    let cordon = cordon_bin();
    let cordon = cordon.to_str().unwrap();
    let mut cmd = agent_as(
        &f.daemon,
        &user,
        "parent",
        work.path(),
        // The parent is a shell that stays alive around its sub-agent, so
        // there is a parent process to attack.
        &[
            "/bin/sh",
            "-c",
            "\"$0\" run --agent child -- \"$1\" -c \"$2\" $$; echo parent alive",
            cordon,
            PYTHON,
            &script,
        ],
    );
    let out = run_with_timeout(&mut cmd, TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("both connected"), "{}", show(&out));
    assert!(text.contains("child_only refused"), "{}", show(&out));
    assert!(text.contains("parent_environ refused"), "{}", show(&out));
    assert!(text.contains("parent_signal refused"), "{}", show(&out));
    assert!(text.contains("parent alive"), "{}", show(&out));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(child_only.received.connections(), 0);
    let t = cordon_e2e::read_trail_when(
        f.daemon.state_dir(),
        "parent/child",
        Duration::from_secs(10),
        |t| t.has("unix.connect", &[("path", json!(b))]),
    )
    .unwrap();
    assert!(
        t.has("unix.connect", &[("path", json!(b))]),
        "the sub-agent's refusal is not recorded under its chain:\n{t}"
    );
}
