//! Host-side fixtures for containment attacks: a regular user who owns
//! secrets, a victim process outside the agent holding a marker, unix socket
//! sinks (pathname and abstract) and a TCP sink for an inherited socket.
//! Every sink records what reached it, so a test can assert that a marker
//! never did.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// A local account the tests create once and reuse: it owns the planted
/// secrets, and agents run as it in the "regular user" variants.
pub const TEST_USER: &str = "cordon-e2e";

#[derive(Debug, Clone)]
pub struct HostUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl HostUser {
    pub fn nobody() -> HostUser {
        HostUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            home: PathBuf::from("/nonexistent"),
        }
    }

    /// [`TEST_USER`], created with a home under /home if missing.
    pub fn regular() -> Result<HostUser> {
        static LOCK: Mutex<()> = Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if nix::unistd::User::from_name(TEST_USER)
            .ok()
            .flatten()
            .is_none()
        {
            let out = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
                .output()
                .ctx(|| "run useradd".into())?;
            // Another test binary may have created it in between.
            if !out.status.success()
                && nix::unistd::User::from_name(TEST_USER)
                    .ok()
                    .flatten()
                    .is_none()
            {
                return Err(Error::Setup(format!(
                    "useradd {TEST_USER}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        let u = nix::unistd::User::from_name(TEST_USER)
            .map_err(|e| Error::Setup(format!("look up {TEST_USER}: {e}")))?
            .ok_or_else(|| Error::Setup(format!("{TEST_USER} missing after useradd")))?;
        std::fs::create_dir_all(&u.dir).ctx(|| format!("create {}", u.dir.display()))?;
        chown(&u.dir, u.uid.as_raw(), u.gid.as_raw())?;
        Ok(HostUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })
    }

    /// Writes `text` at `rel` under the home, owned by the user, readable by
    /// all (so only containment, not file modes, can keep an agent out).
    pub fn plant(&self, rel: &str, text: &str) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.home.join(rel);
        let mut dir = path.parent().map(Path::to_path_buf);
        std::fs::create_dir_all(path.parent().unwrap_or(&self.home))
            .ctx(|| format!("create dirs for {}", path.display()))?;
        std::fs::write(&path, text).ctx(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .ctx(|| format!("chmod {}", path.display()))?;
        chown(&path, self.uid, self.gid)?;
        while let Some(d) = dir {
            if !d.starts_with(&self.home) {
                break;
            }
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
                .ctx(|| format!("chmod {}", d.display()))?;
            chown(&d, self.uid, self.gid)?;
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(path)
    }

    /// The user's `~/.aws/credentials`, with `secret` as its key: the file
    /// the containment tests' agents are refused.
    pub fn plant_aws_credentials(&self, secret: &str) -> Result<PathBuf> {
        self.plant(
            ".aws/credentials",
            &format!("[default]\naws_secret_access_key = {secret}\n"),
        )
    }

    /// A fresh directory owned by the user, for the agent's working dir.
    pub fn workdir(&self) -> Result<tempfile::TempDir> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-work-")
            .tempdir()
            .ctx(|| "create work dir".into())?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .ctx(|| "chmod work dir".into())?;
        chown(dir.path(), self.uid, self.gid)?;
        Ok(dir)
    }
}

pub fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| Error::Setup(format!("chown {}: {e}", path.display())))
}

/// A process outside any agent, running as `user`, with `marker` in its
/// environment and its memory. Killed on drop.
#[derive(Debug)]
pub struct Victim {
    child: Child,
    secret_addr: u64,
}

/// Keeps the marker in its environment, its command line, a buffer whose
/// address it announces, and an open (unlinked) file: what /proc, ptrace,
/// `process_vm_readv` and `pidfd_getfd` would each hand a reader.
const VICTIM: &str = r#"
import ctypes, os, sys, tempfile, time
secret = os.environ['CORDON_E2E_SECRET']
keep = ctypes.create_string_buffer(secret.encode())
held = tempfile.TemporaryFile()
held.write(secret.encode()); held.flush()
sys.stdout.write('ready %d\n' % ctypes.addressof(keep)); sys.stdout.flush()
time.sleep(120)
"#;

impl Victim {
    pub fn start(user: &HostUser, marker: &str) -> Result<Victim> {
        let mut child = Command::new("/usr/bin/python3")
            // The marker in its command line too: /proc/PID/cmdline needs
            // no ptrace access, so only a hidden process keeps it.
            .args(["-c", VICTIM, &format!("--token={marker}")])
            .env("CORDON_E2E_SECRET", marker)
            .uid(user.uid)
            .gid(user.gid)
            .current_dir("/")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ctx(|| "spawn victim".into())?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| Error::Setup("victim stdout".into()))?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
            .ctx(|| "wait for victim".into())?;
        let secret_addr = line
            .strip_prefix("ready ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| Error::Setup(format!("victim said {line:?}")))?;
        Ok(Victim { child, secret_addr })
    }

    /// Where in its memory the marker is.
    pub fn secret_addr(&self) -> u64 {
        self.secret_addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host process outside every agent whose command line is `name` (its
/// argv[0], on `sleep`): what an agent could read from /proc/PID/cmdline.
pub struct Decoy {
    child: Child,
}

impl Decoy {
    pub fn start(name: &str) -> Result<Decoy> {
        let child = Command::new("sleep")
            .arg0(name)
            .arg("300")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ctx(|| "spawn decoy".into())?;
        Ok(Decoy { child })
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The marker in host shared memory, outside every agent: a System V
/// segment (mode 0666, so file modes alone would let any uid attach it) and
/// a POSIX one in /dev/shm (mode 0644). Both are removed on drop.
pub struct HostSharedMemory {
    pub sysv_key: i32,
    shmid: i32,
    pub posix_path: PathBuf,
}

impl HostSharedMemory {
    pub fn plant(marker: &str) -> Result<HostSharedMemory> {
        let bytes = marker.as_bytes();
        // A key of our own, positive and non-zero (never IPC_PRIVATE), from
        // the clock; IPC_EXCL below fails on a clash rather than share one.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        let sysv_key = 0x4000_0000 | (nanos & 0x3fff_ffff) as i32;
        // SAFETY: plain System V calls; the segment is attached only to copy
        // the marker in and is detached at once.
        let shmid =
            unsafe { libc::shmget(sysv_key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666) };
        if shmid < 0 {
            return Err(Error::Setup(format!(
                "shmget: {}",
                std::io::Error::last_os_error()
            )));
        }
        let planted = HostSharedMemory {
            sysv_key,
            shmid,
            posix_path: PathBuf::from(format!(
                "/dev/shm/cordon-e2e-{}",
                crate::secrets::random_alnum(10)
            )),
        };
        // SAFETY: as above; 4096 bytes are mapped, the marker is shorter.
        unsafe {
            let at = libc::shmat(shmid, std::ptr::null(), 0);
            if at as isize == -1 {
                return Err(Error::Setup(format!(
                    "shmat: {}",
                    std::io::Error::last_os_error()
                )));
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast::<u8>(), bytes.len().min(4095));
            libc::shmdt(at);
        }
        std::fs::write(&planted.posix_path, bytes).ctx(|| "writing the /dev/shm marker".into())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&planted.posix_path, std::fs::Permissions::from_mode(0o644))
            .ctx(|| "chmod of the /dev/shm marker".into())?;
        Ok(planted)
    }
}

impl Drop for HostSharedMemory {
    fn drop(&mut self) {
        // SAFETY: removes the segment this value created.
        unsafe {
            libc::shmctl(self.shmid, libc::IPC_RMID, std::ptr::null_mut());
        }
        let _ = std::fs::remove_file(&self.posix_path);
    }
}

/// Another terminal of the operator's, outside every agent: a pty whose
/// slave belongs to `owner` (as a login hands its user the terminal), with
/// `typed` waiting in it as input its shell has not read yet.
pub struct OtherTerminal {
    _master: std::os::fd::OwnedFd,
    _slave: std::os::fd::OwnedFd,
    pub slave_path: PathBuf,
}

impl OtherTerminal {
    pub fn open(owner: u32, group: u32, typed: &str) -> Result<OtherTerminal> {
        use std::os::fd::AsRawFd;
        let pty =
            nix::pty::openpty(None, None).map_err(|e| Error::Setup(format!("openpty: {e}")))?;
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .ctx(|| "naming the pty".into())?;
        chown(&slave_path, owner, group)?;
        let line = format!("{typed}\n");
        let n = nix::unistd::write(&pty.master, line.as_bytes())
            .map_err(|e| Error::Setup(format!("typing into the pty: {e}")))?;
        if n != line.len() {
            return Err(Error::Setup(format!("typed {n} of {} bytes", line.len())));
        }
        Ok(OtherTerminal {
            _master: pty.master,
            _slave: pty.slave,
            slave_path,
        })
    }
}

/// A block device holding the marker in its first bytes, as a disk holds
/// the files on it: a loop device over a file, owned by `owner` (root's
/// own disk, or one handed to a user). Detached on drop.
pub struct LoopDevice {
    pub path: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl LoopDevice {
    pub fn with(marker: &str, owner: u32, group: u32) -> Result<LoopDevice> {
        let backing = tempfile::NamedTempFile::new().ctx(|| "loop backing file".into())?;
        let mut bytes = marker.as_bytes().to_vec();
        bytes.resize(64 * 1024, 0);
        std::fs::write(backing.path(), &bytes).ctx(|| "writing the loop backing file".into())?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(backing.path())
            .output()
            .ctx(|| "running losetup".into())?;
        if !out.status.success() {
            return Err(Error::Setup(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let dev = LoopDevice {
            path,
            _backing: backing,
        };
        chown(&dev.path, owner, group)?;
        Ok(dev)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// What a sink received: connections accepted and the bytes of each.
#[derive(Debug, Default, Clone)]
pub struct Received(Arc<Mutex<Vec<Vec<u8>>>>);

impl Received {
    pub fn connections(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn contains(&self, marker: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|b| String::from_utf8_lossy(b).contains(marker))
    }

    fn serve<S: Read + Send + 'static>(&self, mut s: S) {
        let slot = {
            let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
            all.push(Vec::new());
            all.len() - 1
        };
        let me = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                me.0.lock().unwrap_or_else(|e| e.into_inner())[slot].extend_from_slice(&buf[..n]);
            }
        });
    }
}

/// A unix stream listener served by a host process (this test), at a
/// pathname (mode 0777, so file modes would let anyone in) or an abstract
/// name.
#[derive(Debug)]
pub struct UnixSink {
    pub received: Received,
    pub path: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl UnixSink {
    pub fn pathname(name: &str) -> Result<UnixSink> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-sock-")
            .tempdir()
            .ctx(|| "create socket dir".into())?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .ctx(|| "chmod socket dir".into())?;
        let path = dir.path().join(name);
        let l = std::os::unix::net::UnixListener::bind(&path)
            .ctx(|| format!("bind {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .ctx(|| "chmod socket".into())?;
        let received = Received::default();
        spawn_accept(l, received.clone());
        Ok(UnixSink {
            received,
            path: Some(path),
            _dir: Some(dir),
        })
    }

    pub fn abstract_name(name: &str) -> Result<UnixSink> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .ctx(|| "abstract address".into())?;
        let l = std::os::unix::net::UnixListener::bind_addr(&addr)
            .ctx(|| format!("bind abstract {name}"))?;
        let received = Received::default();
        spawn_accept(l, received.clone());
        Ok(UnixSink {
            received,
            path: None,
            _dir: None,
        })
    }
}

fn spawn_accept(l: std::os::unix::net::UnixListener, received: Received) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            received.serve(s);
        }
    });
}

/// A TCP listener on loopback and one connection to it made by the test
/// process (so it belongs to the test's cgroup): the descriptor a launcher
/// could leak into an agent.
#[derive(Debug)]
pub struct InheritedSocket {
    pub received: Received,
    pub client: std::net::TcpStream,
}

impl InheritedSocket {
    pub fn connect() -> Result<InheritedSocket> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").ctx(|| "bind sink".into())?;
        let addr = l.local_addr().ctx(|| "sink address".into())?;
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                r.serve(s);
            }
        });
        let client = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .ctx(|| "connect sink".into())?;
        Ok(InheritedSocket { received, client })
    }
}

/// The start of every attack script: `cfg` from `sys.argv[1]` (JSON), a
/// `res` dict printed at the end, `attempt(name, f)` recording whether `f`
/// got through or which errno refused it, `read(path)`, `listed(pid)` (is
/// the process in the /proc listing), `sysv_shm(key)` (a System V
/// segment's first bytes), `read_tty(path)` (input waiting in a
/// terminal), `steal_fds(pid)` (`pidfd_getfd` on its descriptors) and
/// `vm_read(pid, addr)` (`process_vm_readv`).
pub const ATTEMPT_PRELUDE: &str = r#"
import ctypes, errno, json, os, signal, socket, sys, time
cfg = json.loads(sys.argv[1])
res = {}
def attempt(name, f):
    try:
        res[name] = {"ok": True, "out": f()}
    except OSError as e:
        res[name] = {"ok": False, "errno": e.errno}
def read(p):
    with open(p, "rb") as f:
        return f.read(4096).decode(errors="replace")
def read_tty(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)
def listed(pid):
    if str(pid) in os.listdir("/proc"):
        return "listed"
    raise OSError(2, "not listed")
def sysv_shm(key):
    c = ctypes.CDLL(None, use_errno=True)
    c.shmat.restype = ctypes.c_void_p
    shmid = c.shmget(key, 0, 0)
    if shmid < 0:
        raise OSError(ctypes.get_errno(), "shmget")
    at = c.shmat(shmid, None, 0o10000)  # SHM_RDONLY
    if at in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "shmat")
    return ctypes.string_at(at, 64).split(b"\0")[0].decode(errors="replace")
def vsock():
    # Made and closed, never connected: nothing is sent to the VM's host.
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.close()
    return "made a vsock socket"
def steal_fds(pid):
    # pidfd_open, then pidfd_getfd on each of the target's first 64
    # descriptors: what each stolen one reads from its start.
    c = ctypes.CDLL(None, use_errno=True)
    pidfd = c.syscall(ctypes.c_long(434), ctypes.c_int(pid), ctypes.c_uint(0))
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    got, refused = [], errno.EBADF
    try:
        for n in range(64):
            fd = c.syscall(ctypes.c_long(438), ctypes.c_int(pidfd), ctypes.c_int(n), ctypes.c_uint(0))
            if fd < 0:
                e = ctypes.get_errno()
                if e != errno.EBADF:
                    refused = e
                continue
            try:
                got.append(os.pread(fd, 256, 0).decode(errors="replace"))
            except OSError:
                got.append("fd %d" % n)
            os.close(fd)
    finally:
        os.close(pidfd)
    if not got:
        raise OSError(refused, "pidfd_getfd")
    return " ".join(got)
class _iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
def vm_read(pid, addr, n=64):
    c = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(n)
    local = _iovec(ctypes.cast(buf, ctypes.c_void_p), n)
    remote = _iovec(ctypes.c_void_p(addr), n)
    got = c.process_vm_readv(ctypes.c_int(pid), ctypes.byref(local), ctypes.c_ulong(1), ctypes.byref(remote), ctypes.c_ulong(1), ctypes.c_ulong(0))
    if got < 0:
        raise OSError(ctypes.get_errno(), "process_vm_readv")
    return buf.raw[:got].split(b"\0")[0].decode(errors="replace")
def io_uring():
    c = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = c.syscall(ctypes.c_long(425), ctypes.c_uint(4), params)  # io_uring_setup
    if fd < 0:
        raise OSError(ctypes.get_errno(), "io_uring_setup")
    os.close(fd)
    return "made a ring"
"#;

/// Whether a process outside any agent can make a vsock socket here (a VM
/// with a vsock device); the socket is closed at once, never connected.
pub fn host_makes_vsock() -> std::result::Result<(), nix::Error> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map(drop)
}

/// This host lets a process outside any agent make what the attacks above
/// try (a vsock socket: a VM with a vsock device; an io_uring), so that an
/// agent's refusal is Cordon's doing, never a kernel that has neither.
pub fn host_makes_vsock_and_io_uring() {
    host_makes_vsock().unwrap_or_else(|e| {
        panic!("this host cannot make a vsock socket ({e}): the test needs one")
    });
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes a 120-byte params struct.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    assert!(
        fd >= 0,
        "this host cannot make an io_uring ({}): the test needs one",
        std::io::Error::last_os_error()
    );
    // SAFETY: closes the ring just made.
    unsafe { libc::close(fd as libc::c_int) };
}

/// The JSON object an attack script printed last.
pub fn outcomes(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no JSON from the agent ({e}):\n{}", crate::world::show(out)))
}

/// `cordon run --agent NAME --state-dir D --user USER -- CMD...` in `cwd`.
pub fn agent_as(
    d: &crate::Daemon,
    user: &HostUser,
    name: &str,
    cwd: &Path,
    cmd: &[&str],
) -> Command {
    let mut c = Command::new(crate::cordon_bin());
    c.args(["run", "--agent", name, "--state-dir"])
        .arg(d.state_dir())
        .args(["--user", &user.name, "--"])
        .args(cmd)
        .current_dir(cwd);
    c
}

/// The `cordon ps` row of running agent `name` once its containment is
/// known: the row appears as soon as the launcher is in its cgroup, how it
/// is contained a moment later, once the launch is through.
pub fn contained_ps_row(d: &crate::Daemon, name: &str) -> String {
    let prefix = format!("{name} ");
    let mut row = String::new();
    crate::wait_until(
        &format!("ps to show agent {name}"),
        Duration::from_secs(10),
        || {
            let ps = d.cordon(&["ps"]).unwrap();
            row = String::from_utf8_lossy(&ps.stdout)
                .lines()
                .find(|l| l.starts_with(&prefix) && l.contains("running") && !l.contains("unknown"))
                .unwrap_or_default()
                .to_string();
            !row.is_empty()
        },
    )
    .unwrap();
    row
}

/// A two-file handshake with an agent's script: the script creates `ready`
/// once it is set up, then waits for `go` (its own bound, 30 s in the
/// scripts here), so a test can act between the two.
pub struct Handshake {
    pub ready: PathBuf,
    pub go: PathBuf,
}

impl Handshake {
    /// The two files in `dir`, which the agent can write.
    pub fn in_dir(dir: &Path) -> Handshake {
        Handshake {
            ready: dir.join("ready"),
            go: dir.join("go"),
        }
    }

    pub fn wait_ready(&self) -> Result<()> {
        crate::wait_until("the agent to be ready", Duration::from_secs(20), || {
            self.ready.exists()
        })
    }

    pub fn go(&self) -> Result<()> {
        std::fs::write(&self.go, "").ctx(|| format!("write {}", self.go.display()))
    }
}
