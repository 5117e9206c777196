//! Chapter 9: host containment. The deployer runs as a real user whose home holds an AWS key;
//! it tries to read that key and to talk to a Docker socket a host process serves, and both are
//! refused and recorded, while its API call with the vault's token still goes through. Then it
//! tries its operator's session: typing into the operator's terminal and reading a key from the
//! operator's session keyring, and both are refused. A database client the operator runs with
//! its password on the command line is not even listed in the agent's `/proc`, the user's other
//! terminal is not there to read, a disk the user owns is refused, and a host process's shared
//! memory is not there.

use std::process::Command;
use std::time::Duration;

use crate::demo::ctx::Ctx;
use crate::host::{Decoy, HostSharedMemory, HostUser, LoopDevice, OtherTerminal, UnixSink};
use crate::operator_session::{Terminal, with_session_key};
use crate::world::PYTHON;

const PROBE_PATH: &str = "/repos/acme/app";

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "9. Host containment",
        "Cordon also holds the agent on the host: no credential files, no other processes, no \
         host sockets, no inherited descriptors. Here the deployer runs as a real user with an \
         AWS key in its home and a Docker socket nearby.",
    );
    let user = HostUser::regular()?;
    let secret = format!("demo-aws-{}", crate::secrets::random_alnum(16));
    let key = user.plant(
        ".aws/credentials",
        &format!("[default]\naws_secret_access_key = {secret}\n"),
    )?;
    let docker = UnixSink::pathname("docker.sock")?;
    let sock = docker
        .path
        .clone()
        .ok_or_else(|| anyhow::anyhow!("socket path"))?;
    let work = user.workdir()?;
    // An operator's database client with its password on the command line,
    // as `mysql -p...` is often run: a host process outside every agent.
    let password = format!("demo-db-{}", crate::secrets::random_alnum(16));
    let _mysql = Decoy::start(&format!("mysql --password={password}"))?;
    // The user's other login, with a password typed and not yet read, and a
    // disk handed to the user: both theirs, so file modes let them in.
    let typed = format!("demo-typed-{}", crate::secrets::random_alnum(16));
    let other = OtherTerminal::open(user.uid, user.gid, &typed)?;
    let on_disk = format!("demo-disk-{}", crate::secrets::random_alnum(16));
    let disk = LoopDevice::with(&on_disk, user.uid, user.gid)?;
    // A host process's shared memory, readable by every user (mode 0644).
    let shared = format!("demo-shm-{}", crate::secrets::random_alnum(16));
    let shm = HostSharedMemory::plant(&shared)?;
    let host_vsock = crate::host::host_makes_vsock().is_ok();
    c.n.say(&format!(
        "{} holds a key (mode 0644: file modes would let any user read it); {} is a \
         stand-in for docker.sock served by a host process (mode 0777); the operator \
         runs a database client with its password on the command line; {} is the user's \
         other terminal, with a line typed and not yet read; {} is a disk the user owns; \
         {} is a host process's shared memory.{}",
        key.display(),
        sock.display(),
        other.slave_path.display(),
        disk.path.display(),
        shm.posix_path.display(),
        if host_vsock {
            " This VM has a vsock device, a way to its hypervisor's host that no network hook sees."
        } else {
            " This host has no vsock device, so the vsock step below shows nothing."
        }
    ));
    let script = format!(
        "cat ~/.aws/credentials; \
         echo \"processes it can see: $(ls -d /proc/[0-9]* | wc -l)\"; \
         cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o 'passwor[d]=[^ ]*' || echo 'operator password: not visible'; \
         head -n 1 {tty} 2>/dev/null || echo 'other terminal: not there'; \
         head -c 64 {disk} 2>&1 | tr -d '\\0' | sed 's/^/disk: /'; echo; \
         cat {shm} 2>/dev/null || echo 'shared memory: not there'; echo; \
         python3 -c 'import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); print(\"vsock to the VM host: made\")' 2>/dev/null || echo 'vsock to the VM host: refused'; \
         python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"docker.sock: connected\")' {sock}; \
         curl -sS --max-time 15 -H \"Authorization: Bearer $GITHUB_TOKEN\" -o /dev/null -w 'api.github.com: HTTP %{{http_code}}\\n' https://api.github.com{PROBE_PATH}",
        sock = sock.display(),
        tty = other.slave_path.display(),
        disk = disk.path.display(),
        shm = shm.posix_path.display()
    );
    let before = c.w.github.count();
    let mut cmd = Command::new(&c.cordon);
    cmd.args(["run", "--agent", "deployer", "--state-dir"])
        .arg(c.w.state_dir())
        .args(["--user", &user.name, "--", "sh", "-c", &script])
        .current_dir(work.path());
    let out = c.run_shown(&mut cmd, Duration::from_secs(60))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    c.n.check(
        "the AWS key was not read",
        !text.contains(&secret) && text.contains("Permission denied"),
        "",
    );
    c.n.check(
        "the operator's process, and the password on its command line, were not visible",
        !text.contains(&password) && text.contains("operator password: not visible"),
        "",
    );
    c.n.check(
        "the user's other terminal was not there to read",
        !text.contains(&typed) && text.contains("other terminal: not there"),
        "",
    );
    c.n.check(
        "the disk the user owns was refused",
        !text.contains(&on_disk)
            && text
                .lines()
                .any(|l| l.starts_with("disk: ") && l.contains("Operation not permitted")),
        "",
    );
    c.n.check(
        "the host's shared memory was not there",
        !text.contains(&shared) && text.contains("shared memory: not there"),
        "",
    );
    if host_vsock {
        c.n.check(
            "a vsock socket (this VM's way to its host, which no network hook sees) was refused",
            text.contains("vsock to the VM host: refused")
                && !text.contains("vsock to the VM host: made"),
            "",
        );
    }
    c.n.check(
        "docker.sock was refused and its server saw no connection",
        !text.contains("docker.sock: connected") && docker.received.connections() == 0,
        "",
    );
    let got = super::credentials::authorization_since(c, before, PROBE_PATH);
    c.n.check(
        "the same agent's API call still went through with the vault's token",
        text.contains("api.github.com: HTTP 200") && got.starts_with("Bearer demo-token-"),
        &got,
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = c.cordon(&["audit", "tail", "--agent", "deployer", "-n", "20"])?;
    let tail = String::from_utf8_lossy(&out.stdout);
    c.n.shows("both refusals are in the trail, with the rule that refused them.");
    c.n.check(
        "the trail records the key read and the socket connect as refused",
        tail.contains("contain:credentials") && tail.contains("contain:unix"),
        "",
    );
    operator_session(c, &user)
}

/// The operator's own session: `cordon run` starts on the operator's
/// terminal and in the operator's session keyring. The agent tries to type
/// a command into that terminal (the operator's shell would run it once the
/// agent exits) and to read a key kept in that keyring.
fn operator_session(c: &mut Ctx, user: &HostUser) -> anyhow::Result<()> {
    c.n.say(
        "The agent also starts on the operator's terminal and in the operator's session keyring, \
         which holds a deploy key here. It tries to type a command into that terminal, which the \
         operator's shell would run after it exits, and to read the key.",
    );
    let secret = format!("demo-keyring-{}", crate::secrets::random_alnum(16));
    let line = format!(
        "echo typed-by-the-agent-{}",
        crate::secrets::random_alnum(8)
    );
    // Short enough to read in the demo's output; the e2e tests use the
    // harness's fuller version (`operator_session`).
    let script = "import ctypes, fcntl, sys, termios\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        key = libc.syscall(250, 10, -3, b'user', b'deploy-key', 0)  # keyctl(SEARCH, session keyring)\n\
        buf = ctypes.create_string_buffer(256)\n\
        n = libc.syscall(250, 11, key, buf, 256) if key > 0 else -1  # keyctl(READ)\n\
        print('operator keyring:', buf.raw[:n].decode() if n > 0 else 'refused')\n\
        try:\n\
        \x20   [fcntl.ioctl(0, termios.TIOCSTI, bytes([b])) for b in (sys.argv[1] + '\\n').encode()]\n\
        \x20   print('operator terminal: typed into')\n\
        except OSError:\n\
        \x20   print('operator terminal: refused')\n";
    let work = user.workdir()?;
    let terminal = Terminal::open()?;
    let mut cmd = Command::new(&c.cordon);
    cmd.args(["run", "--agent", "deployer", "--state-dir"])
        .arg(c.w.state_dir())
        .args(["--user", &user.name, "--", PYTHON, "-c", script, &line])
        .current_dir(work.path());
    terminal.attach(&mut cmd);
    with_session_key(&mut cmd, "deploy-key", &secret)?;
    let out = c.run_shown(&mut cmd, Duration::from_secs(60))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.check(
        "the key in the operator's keyring was not read",
        text.contains("operator keyring: refused") && !text.contains(&secret),
        "",
    );
    let typed = terminal.pending_input()?;
    c.n.check(
        "nothing was typed into the operator's terminal",
        text.contains("operator terminal: refused") && !typed.contains(&line),
        &typed,
    );
    Ok(())
}
