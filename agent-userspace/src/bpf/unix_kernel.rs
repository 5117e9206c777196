//! The cgroup unix hooks on the running kernel (root only; a loud SKIPPED
//! banner otherwise): the required containment layer, attached without
//! the LSM layer, so this runs on kernels that refuse trampolines too.
//! A probe (this test binary re-executed inside the instance cgroup) must
//! get EPERM for every pathname socket off the allow list, the servers
//! must see nothing, and the refusals must come back through
//! `ContainEvents`.
use std::{
    io::ErrorKind,
    os::unix::{
        fs::PermissionsExt,
        net::{UnixDatagram, UnixListener, UnixStream},
    },
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    super::{
        EnforcementMaps, attach_all,
        contain::{ContainEventKind, ContainEvents, ContainMaps, KernelProfile, UnixAddr},
        load::attach_required_hooks,
    },
    kernel::{probe::errno, probe::report, results, run_probe, setup, skipped},
};

fn abstract_name(d: &Path) -> Vec<u8> {
    format!("cordon-uds-{}", d.file_name().unwrap().to_string_lossy()).into_bytes()
}

fn abstract_addr(d: &Path) -> std::os::unix::net::SocketAddr {
    <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
        abstract_name(d),
    )
    .unwrap()
}

/// Probe side: every case, as `PROBE name=errno`.
pub(super) fn probe_unix(d: &Path) {
    // libtest's "test ... " header has no newline before our output.
    println!();
    report("pid", std::process::id() as i32);
    report(
        "allowed",
        errno(UnixStream::connect(d.join("allowed.sock"))),
    );
    report("denied", errno(UnixStream::connect(d.join("denied.sock"))));
    std::env::set_current_dir(d).unwrap();
    report("relative", errno(UnixStream::connect("denied.sock")));
    report(
        "relative_allowed",
        errno(UnixStream::connect("allowed.sock")),
    );
    let dg = UnixDatagram::unbound().unwrap();
    report(
        "dgram_denied",
        errno(dg.send_to(b"x", d.join("denied.dgram"))),
    );
    report(
        "dgram_allowed",
        errno(dg.send_to(b"x", d.join("allowed.dgram"))),
    );
    report(
        "dgram_connect_denied",
        errno(
            UnixDatagram::unbound()
                .unwrap()
                .connect(d.join("denied.dgram")),
        ),
    );
    report(
        "abstract",
        errno(UnixStream::connect_addr(&abstract_addr(d))),
    );
}

/// connect()+close() of the allowed socket; best of five rounds, in ns.
pub(super) fn probe_unix_bench(d: &Path) {
    println!();
    let path = d.join("allowed.sock");
    const N: u32 = 20_000;
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..N {
            drop(UnixStream::connect(&path).unwrap());
        }
        best = best.min(t.elapsed().as_nanos() / N as u128);
    }
    report("ns", best as i32);
}

/// Accepts and drops connections until told to stop (then woken by one
/// last connect), so the benchmark's connects never wait on a full
/// backlog. Blocking: a polling loop would add its own jitter.
fn acceptor(l: UnixListener, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    l.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            drop(l.accept().unwrap());
        }
    })
}

fn nothing_pending<T>(r: std::io::Result<T>) -> bool {
    matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn unix_hooks_enforce_the_allow_list() {
    if skipped(
        "agent_userspace::bpf::contain_tests::unix_kernel::unix_hooks_enforce_the_allow_list",
    ) {
        return;
    }
    let fx = setup();
    let d = fx.dir.path().to_path_buf();
    // World-writable sockets: DAC would allow every connect here.
    let open = |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777));
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let allowed = UnixListener::bind(d.join("allowed.sock")).unwrap();
    let denied = UnixListener::bind(d.join("denied.sock")).unwrap();
    let dg_allowed = UnixDatagram::bind(d.join("allowed.dgram")).unwrap();
    let dg_denied = UnixDatagram::bind(d.join("denied.dgram")).unwrap();
    for s in [
        "allowed.sock",
        "denied.sock",
        "allowed.dgram",
        "denied.dgram",
    ] {
        open(&d.join(s)).unwrap();
    }
    let abs = UnixListener::bind_addr(&abstract_addr(&d)).unwrap();
    for l in [&allowed, &denied, &abs] {
        l.set_nonblocking(true).unwrap();
    }
    dg_denied.set_nonblocking(true).unwrap();
    dg_allowed.set_nonblocking(true).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mut ebpf = attach_all(&fx.parent, &fx.pin_dir).expect("attach_all");
    // As the daemon does: CONFIG is taken before containment attaches, so
    // the hooks must find it through its pin.
    let maps = EnforcementMaps::from_ebpf(&mut ebpf).unwrap();
    attach_required_hooks(&mut ebpf, &fx.parent, &fx.pin_dir).expect("attach_required_hooks");
    let contain = ContainMaps::from_ebpf(&mut ebpf).unwrap();
    let mut events = ContainEvents::from_ebpf(&mut ebpf).unwrap();
    let inst_id = fx.configure(&maps);

    // Without a profile nothing is refused.
    let before = results(&run_probe("unix", &d, Some(&fx.instance)));
    assert_eq!(before["denied"], "0", "{before:?}");
    for l in [&allowed, &denied, &abs] {
        while l.accept().is_ok() {}
    }
    for s in [&dg_allowed, &dg_denied] {
        while s.recv(&mut [0; 8]).is_ok() {}
    }

    let profile = KernelProfile {
        files: vec![],
        unix_allow: vec![d.join("allowed.sock"), d.join("allowed.dgram")],
    };
    contain.install(inst_id, &profile).unwrap();
    // A restart attaches anew over the pins; every map now comes from a pin.
    attach_required_hooks(&mut ebpf, &fx.parent, &fx.pin_dir).expect("re-attach");
    for name in ["cordon_uds_connect", "cordon_uds_sendmsg"] {
        assert!(fx.pin_dir.join(format!("link_{name}")).exists());
        assert!(!fx.pin_dir.join(format!("next_link_{name}")).exists());
    }

    let got = results(&run_probe("unix", &d, Some(&fx.instance)));
    let eperm = libc::EPERM.to_string();
    for (k, v) in [
        ("allowed", "0"),
        ("denied", eperm.as_str()),
        ("relative", &eperm),
        ("relative_allowed", &eperm),
        ("dgram_denied", &eperm),
        ("dgram_allowed", "0"),
        ("dgram_connect_denied", &eperm),
        ("abstract", "0"),
    ] {
        assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}: {got:?}");
    }
    assert!(
        nothing_pending(denied.accept()),
        "denied listener saw a connection"
    );
    assert!(
        nothing_pending(dg_denied.recv(&mut [0; 8])),
        "denied datagram arrived"
    );
    assert!(allowed.accept().is_ok(), "allowed listener saw nothing");
    assert!(
        dg_allowed.recv(&mut [0; 8]).is_ok(),
        "allowed datagram lost"
    );
    let probe_pid: u32 = got["pid"].parse().unwrap();

    let p = |s: &str| d.join(s).display().to_string();
    let mut want = vec![
        p("denied.sock"),
        "denied.sock".to_string(),
        "allowed.sock".to_string(),
        p("denied.dgram"),
        p("denied.dgram"),
    ];
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !want.is_empty() {
            let ev = tokio::time::timeout_at(deadline, events.next())
                .await
                .unwrap_or_else(|_| panic!("events missing: {want:?}"))
                .unwrap();
            eprintln!("event: {ev:?}");
            assert_eq!(
                (ev.cgroup_id, ev.pid, ev.errno),
                (inst_id, probe_pid, libc::EPERM)
            );
            let ContainEventKind::UnixConnect {
                addr: UnixAddr::Pathname(path),
            } = &ev.kind
            else {
                panic!("unexpected event {ev:?}");
            };
            let i = want
                .iter()
                .position(|w| w == path)
                .expect("unexpected path");
            want.remove(i);
        }
    });
    assert_eq!(contain.lost_events().unwrap(), 0);

    // Outside the instance nothing is refused.
    let outside = results(&run_probe("unix", &d, None));
    assert_eq!(outside["denied"], "0", "{outside:?}");

    // Per-connect cost inside a profiled instance against outside.
    let stop = Arc::new(AtomicBool::new(false));
    let serving = acceptor(allowed, stop.clone());
    // Alternating runs, best of each: the machine's noise hits both alike.
    let ns = |cg: Option<&Path>| -> f64 {
        results(&run_probe("unix_bench", &d, cg))["ns"]
            .parse()
            .unwrap()
    };
    let (mut i, mut o) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        i = i.min(ns(Some(&fx.instance)));
        o = o.min(ns(None));
    }
    stop.store(true, Ordering::Relaxed);
    // Refused: the acceptor saw `stop` after a queued connect and is gone.
    if let Err(e) = UnixStream::connect(d.join("allowed.sock")) {
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    }
    serving.join().unwrap();
    eprintln!(
        "unix connect+close ns: inside {i} outside {o} ratio {:.2}",
        i / o
    );

    contain.remove(inst_id).unwrap();
    let after = results(&run_probe("unix", &d, Some(&fx.instance)));
    assert_eq!(after["denied"], "0", "{after:?}");
    drop(ebpf);
}

/// A refused load carries the verifier's reason, not only an errno.
#[test]
fn a_refused_load_carries_the_verifier_log() {
    if skipped(
        "agent_userspace::bpf::contain_tests::unix_kernel::a_refused_load_carries_the_verifier_log",
    ) {
        return;
    }
    use super::super::raw_prog::{self, RawProgError};
    // SAFETY: bpf_insn is plain integers; all-zero is a valid value.
    let mut exit: aya_obj::generated::bpf_insn = unsafe { std::mem::zeroed() };
    exit.code = 0x95; // BPF_JMP | BPF_EXIT, with r0 never written
    let err = raw_prog::load(
        "cordon_bad",
        raw_prog::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        raw_prog::BPF_CGROUP_UNIX_CONNECT,
        &[exit],
    )
    .unwrap_err();
    let RawProgError::Load { log, .. } = &err else {
        panic!("{err}");
    };
    assert!(log.contains("R0 !read_ok"), "{err}");
    eprintln!("{err}");
}
