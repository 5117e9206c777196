//! The agent side of `kernel_enforces_and_reports`: this test binary run
//! again, inside the instance cgroup, with `CORDON_CONTAIN_PROBE` set.
//! Without it (a normal test run) the probe does nothing.
use std::{
    os::unix::net::{UnixDatagram, UnixStream},
    path::Path,
    time::Instant,
};

pub const ABSTRACT: &[u8] = b"cordon-contain-test-abstract";

/// The files the profile covers.
pub fn plant(d: &Path) {
    std::fs::create_dir_all(d.join("secret/public")).unwrap();
    for f in [
        "secret/key.txt",
        "secret/public/ok.txt",
        "other.txt",
        "secretx",
        "single.txt",
    ] {
        std::fs::write(d.join(f), b"x").unwrap();
    }
}

pub fn errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

pub fn report(name: &str, code: i32) {
    println!("PROBE {name}={code}");
}

/// Not a test: the child the kernel tests start (this binary again, in a
/// cgroup) to make the system calls under test. Ignored so an ordinary run
/// does not count it as a passing test.
#[test]
#[ignore = "entry point of the kernel tests' child process"]
fn probe() {
    let spec = std::env::var(super::PROBE_ENV).expect("started by run_probe with the probe spec");
    let (mode, dir) = spec.split_once(':').unwrap();
    let d = Path::new(dir);
    match mode {
        "check" => check(d),
        "bench" => bench(d),
        "unix" => super::super::unix_kernel::probe_unix(d),
        "unix_bench" => super::super::unix_kernel::probe_unix_bench(d),
        other => panic!("unknown probe mode {other}"),
    }
}

fn check(d: &Path) {
    let open = |p: &str| errno(std::fs::File::open(d.join(p)));
    report("secret_file", open("secret/key.txt"));
    report("secret_dir", open("secret"));
    report("public_file", open("secret/public/ok.txt"));
    report("other_file", open("other.txt"));
    report("secretx_file", open("secretx"));
    report("single_file", open("single.txt"));
    report(
        "unix_denied",
        errno(UnixStream::connect(d.join("denied.sock"))),
    );
    report(
        "unix_allowed",
        errno(UnixStream::connect(d.join("allowed.sock"))),
    );
    std::env::set_current_dir(d).unwrap();
    report("unix_relative", errno(UnixStream::connect("denied.sock")));
    let dg = UnixDatagram::unbound().unwrap();
    report(
        "dgram_denied",
        errno(dg.send_to(b"x", d.join("denied.dgram"))),
    );
    report(
        "dgram_allowed",
        errno(dg.send_to(b"x", d.join("allowed.dgram"))),
    );
    let abs =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            ABSTRACT,
        )
        .unwrap();
    report("unix_abstract", errno(UnixStream::connect_addr(&abs)));

    // Landlock scoping (what `cordon run` applies), so its refusals show up
    // in the observers too: signals, ptrace and abstract sockets outside
    // the domain.
    let landlock = scope_self();
    report("landlock", landlock);
    if landlock == 0 {
        let ppid = std::os::unix::process::parent_id();
        // SAFETY: signal 0 only checks permission.
        let k = unsafe { libc::kill(ppid as i32, 0) };
        report(
            "landlock_kill",
            if k == 0 {
                0
            } else {
                errno::<()>(Err(std::io::Error::last_os_error()))
            },
        );
        report(
            "landlock_ptrace",
            errno(std::fs::File::open(format!("/proc/{ppid}/mem"))),
        );
        report("landlock_abstract", errno(UnixStream::connect_addr(&abs)));
    }
}

/// Creates a Landlock domain scoping abstract unix sockets and signals
/// (ABI 6). Returns 0 or the errno.
fn scope_self() -> i32 {
    #[repr(C)]
    struct Attr {
        handled_access_fs: u64,
        handled_access_net: u64,
        scoped: u64,
    }
    let attr = Attr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped: 1 | 2, // ABSTRACT_UNIX_SOCKET | SIGNAL
    };
    // SAFETY: raw Landlock syscalls with a valid attribute struct.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const Attr,
            size_of::<Attr>(),
            0,
        );
        if fd < 0 {
            return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
        }
        let r = libc::syscall(libc::SYS_landlock_restrict_self, fd, 0);
        libc::close(fd as i32);
        if r < 0 {
            return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
        }
    }
    0
}

/// open()+close() of an allowed file under a profile with rules.
fn bench(d: &Path) {
    let path = std::ffi::CString::new(
        d.join("secret/public/ok.txt")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .unwrap();
    const N: u32 = 200_000;
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..N {
            // SAFETY: plain syscalls on a valid C string.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                assert!(fd >= 0);
                libc::close(fd);
            }
        }
        best = best.min(t.elapsed().as_nanos() / N as u128);
    }
    report("ns", best as i32);
}
