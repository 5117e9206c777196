//! An agent cannot type into the terminal it was started from. Its
//! standard input is its operator's terminal; `ioctl(TIOCSTI)` on it would
//! push a command into the terminal's input, which the operator's shell
//! reads and runs once the agent exits: outside the agent's cgroup, as the
//! operator. Each agent here runs on a real pseudo-terminal that is its
//! controlling terminal, types a marker line, and the test then reads what
//! the shell would read next.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use cordon_e2e::host::{HostUser, agent_as, outcomes};
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{PYTHON, show, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip, run_with_timeout};
use serde_json::json;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

/// Types its argument and a newline into its terminal, byte by byte.
const TYPIST: &str = r#"
import fcntl, json, sys, termios
res = {}
try:
    for b in (sys.argv[1] + "\n").encode():
        fcntl.ioctl(0, termios.TIOCSTI, bytes([b]))
    res["typed"] = {"ok": True}
except OSError as e:
    res["typed"] = {"ok": False, "errno": e.errno}
print(json.dumps(res))
"#;

/// The agent's launcher gets `slave` as standard input and controlling
/// terminal, as a shell's foreground job has.
fn on_terminal(cmd: &mut Command, slave: &OwnedFd) {
    let fd = slave.as_raw_fd();
    // SAFETY: dup2, setsid and ioctl are async-signal-safe; this runs in
    // the forked child after its standard descriptors are in place, and
    // puts the terminal over the standard input the runner gave it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 0) < 0 || libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What the operator's shell would read from the terminal next.
fn pending_input(slave: &OwnedFd) -> String {
    let fd = slave.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor this test owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
    }
    let mut file = std::fs::File::from(slave.try_clone().unwrap());
    let mut buf = [0u8; 4096];
    match file.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => String::new(),
        Err(e) => panic!("reading the terminal: {e}"),
    }
}

fn types_nothing(mut cmd: Command, marker: &str, who: &str) {
    let pty = nix::pty::openpty(None, None).unwrap();
    on_terminal(&mut cmd, &pty.slave);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{who}: {}", show(&out));
    let res = outcomes(&out);
    let typed = pending_input(&pty.slave);
    assert!(
        !typed.contains(marker),
        "{who} typed into its operator's terminal: {typed:?}"
    );
    assert_eq!(
        res["typed"],
        json!({"ok": false, "errno": libc::EPERM}),
        "{who}: {res}"
    );
}

#[test]
fn an_agent_cannot_type_a_command_into_its_operators_terminal() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let marker = format!("echo MARKER-{}", random_alnum(24));

    let nobody = HostUser::nobody();
    let work = nobody.workdir().unwrap();
    let cmd = agent_as(
        &daemon,
        &nobody,
        "typist",
        work.path(),
        &[PYTHON, "-c", TYPIST, &marker],
    );
    types_nothing(cmd, &marker, "an agent running as nobody");

    // A root agent in its own user namespace: the terminal is still the
    // operator's.
    let root_work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(cordon_bin());
    cmd.args(["run", "--agent", "typist", "--state-dir"])
        .arg(daemon.state_dir())
        .args(["--allow-root", "--", PYTHON, "-c", TYPIST, &marker])
        .current_dir(root_work.path())
        .env_remove("SUDO_UID");
    types_nothing(cmd, &marker, "a root agent");
}
