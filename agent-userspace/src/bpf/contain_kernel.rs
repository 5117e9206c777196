//! The real programs on the running kernel (root only; a loud SKIPPED
//! banner otherwise): a temporary Cordon parent cgroup with one instance
//! below it, a profile installed through `ContainMaps`, and a probe (this
//! test binary re-executed inside the instance) whose refusals must be
//! EPERM and must come back through `ContainEvents`.
use std::{
    io::Write,
    os::unix::{fs::MetadataExt, net::UnixDatagram, net::UnixListener, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use agent_common::ProxyConfig;

use super::super::{
    BpfError, EnforcementMaps, attach_all, bpffs,
    contain::{
        ContainEvent, ContainEventKind, ContainEvents, ContainMaps, KernelProfile, UnixAddr,
    },
    detach_all,
    load::attach_containment,
};
use super::rule;

#[path = "contain_probe.rs"]
pub(super) mod probe;

pub(super) const PROBE_ENV: &str = "CORDON_CONTAIN_PROBE";

pub(super) fn skipped(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    let bar = "!".repeat(78);
    // Straight to fd 2: libtest captures the output of passing tests.
    let banner = format!(
        "\n{bar}\n!! SKIPPED: privileged test {test} needs root\n\
         !! (cgroups, LSM eBPF programs). Run it through `cargo xtask test`,\n\
         !! which runs the suite as root. THIS TEST DID NOT RUN.\n{bar}\n"
    );
    if std::io::stderr().write_all(banner.as_bytes()).is_err() {
        // Nowhere left to say it.
    }
    if let Some(log) = std::env::var_os("CORDON_E2E_SKIP_LOG") {
        let line = format!("{test}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "!! could not record the skip in {}: {e}",
                log.to_string_lossy()
            );
        }
    }
    true
}

/// Everything the test creates, removed even when an assertion fails.
pub(super) struct Fixture {
    pub parent: PathBuf,
    pub instance: PathBuf,
    pub pin_dir: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = detach_all(&self.pin_dir) {
            eprintln!("cleanup: {e}");
        }
        for cg in [&self.instance, &self.parent] {
            if let Err(e) = std::fs::remove_dir(cg) {
                eprintln!("cleanup {}: {e}", cg.display());
            }
        }
    }
}

pub(super) fn setup() -> Fixture {
    let mount = crate::cgroup::mount::cgroup2_mount().expect("cgroup2 mount");
    let tag = format!("{}-{}", std::process::id(), rand::random::<u32>());
    let parent = mount.join(format!("cordon-test-{tag}"));
    let instance = parent.join("inst");
    std::fs::create_dir(&parent).unwrap();
    std::fs::create_dir(&instance).unwrap();
    bpffs::ensure_mounted().unwrap();
    let pin_dir = Path::new(bpffs::BPFFS)
        .join(format!("cordon-test-{tag}"))
        .join("v2");
    let dir = tempfile::Builder::new()
        .prefix("cordon-contain")
        .tempdir()
        .unwrap();
    Fixture {
        parent,
        instance,
        pin_dir,
        dir,
    }
}

impl Fixture {
    /// Points the programs at the test's parent cgroup (no proxy, no
    /// resolver) as the daemon does at start; returns the instance's id.
    pub fn configure(&self, maps: &EnforcementMaps) -> u64 {
        let mount = crate::cgroup::mount::cgroup2_mount().unwrap();
        let parent_level = self
            .parent
            .strip_prefix(&mount)
            .unwrap()
            .components()
            .count() as u32;
        maps.set_config(ProxyConfig {
            proxy_port: 0,
            dns_port: 0,
            parent_level,
            parent_id: std::fs::metadata(&self.parent).unwrap().ino(),
        })
        .unwrap();
        std::fs::metadata(&self.instance).unwrap().ino()
    }
}

/// Runs this test binary's probe inside `cgroup` (None: where we are).
pub(super) fn run_probe(mode: &str, dir: &Path, cgroup: Option<&Path>) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "bpf::contain_tests::kernel::probe::probe",
        "--ignored",
        "--nocapture",
    ])
    .args(["--test-threads", "1"])
    .env(PROBE_ENV, format!("{mode}:{}", dir.display()));
    if let Some(cg) = cgroup {
        let procs =
            std::ffi::CString::new(cg.join("cgroup.procs").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: only async-signal-safe calls between fork and exec;
        // writing "0" moves the writer itself into the cgroup.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `name=errno` lines the probe printed, prefixed `PROBE `.
pub(super) fn results(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The real maps hold the profile's entries and nothing of the replaced one.
fn maps_hold_exactly(contain: &ContainMaps, id: u64, d: &Path) {
    let snap = contain.snapshot(id);
    assert_eq!(snap.profile, Some(agent_common::PROFILE_ACTIVE));
    let files: Vec<(String, u8)> = snap
        .files
        .iter()
        .map(|(bits, data, v)| {
            let s = String::from_utf8_lossy(&data[8..*bits as usize / 8]);
            (s.strip_prefix(d.to_str().unwrap()).unwrap().to_string(), *v)
        })
        .collect();
    let mut want = vec![
        ("/secret/".to_string(), 1),
        ("/secret\0".to_string(), 1),
        ("/single.txt\0".to_string(), 1),
        ("/secret/public/".to_string(), 0),
        ("/secret/public\0".to_string(), 0),
    ];
    want.sort();
    let mut got = files.clone();
    got.sort();
    assert_eq!(got, want, "trie: {files:?}");
    assert_eq!(snap.unix.len(), 2);
}

/// This kernel will not load LSM or fexit programs (some VMs refuse every
/// trampoline-based program type with EPERM). The maps were still checked;
/// enforcement could not be, and that is said loudly.
fn kernel_refused(e: &BpfError) {
    assert!(
        matches!(
            e,
            BpfError::Lsm { .. } | BpfError::Observer { .. } | BpfError::BpfLsmInactive { .. }
        ),
        "containment failed for another reason: {e}"
    );
    let bar = "!".repeat(78);
    let banner = format!(
        "\n{bar}\n!! This kernel refuses the BPF LSM programs:\n!! {e}\n\
         !! the_lsm_layer_enforces_and_reports cannot run here (it is ignored, not passed).\n{bar}\n"
    );
    if std::io::stderr().write_all(banner.as_bytes()).is_err() {
        // Nowhere left to say it.
    }
}

/// The real pinned maps take a profile, replace it whole and drop it,
/// whether or not the kernel runs the LSM programs that read them.
#[test]
fn profiles_are_installed_replaced_and_removed_in_the_real_maps() {
    if skipped(
        "agent_userspace::bpf::contain_tests::kernel::profiles_are_installed_replaced_and_removed_in_the_real_maps",
    ) {
        return;
    }
    lsm_layer(false);
}

/// Needs a kernel that loads BPF LSM programs. This project's CI kernel
/// refuses every trampoline program (EPERM at load), so there it cannot
/// run at all, and an ignored test says so where a silent early return
/// would count as a pass. Run with `--ignored` on such a kernel.
#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; the CI kernel refuses them"]
fn the_lsm_layer_enforces_and_reports() {
    if skipped("agent_userspace::bpf::contain_tests::kernel::the_lsm_layer_enforces_and_reports") {
        return;
    }
    lsm_layer(true);
}

fn lsm_layer(must_attach: bool) {
    let fx = setup();
    let d = fx.dir.path().to_path_buf();
    probe::plant(&d);
    // Servers live outside the agent cgroup, like real host services.
    let _denied = UnixListener::bind(d.join("denied.sock")).unwrap();
    let _allowed = UnixListener::bind(d.join("allowed.sock")).unwrap();
    let _dg_denied = UnixDatagram::bind(d.join("denied.dgram")).unwrap();
    let _dg_allowed = UnixDatagram::bind(d.join("allowed.dgram")).unwrap();
    let _abstract = UnixListener::bind_addr(
        &<std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(probe::ABSTRACT).unwrap(),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mut ebpf = attach_all(&fx.parent, &fx.pin_dir).expect("attach_all");
    let attached = attach_containment(&mut ebpf, &fx.parent, &fx.pin_dir);
    let maps = EnforcementMaps::from_ebpf(&mut ebpf).unwrap();
    let contain = ContainMaps::from_ebpf(&mut ebpf).unwrap();
    let mut events = ContainEvents::from_ebpf(&mut ebpf).unwrap();
    let inst_id = fx.configure(&maps);

    let profile = KernelProfile {
        files: vec![
            rule(d.join("secret").to_str().unwrap(), true, true),
            rule(d.join("secret/public").to_str().unwrap(), true, false),
            rule(d.join("single.txt").to_str().unwrap(), false, true),
        ],
        unix_allow: vec![d.join("allowed.sock"), d.join("allowed.dgram")],
    };
    // Installed twice: a replace must leave exactly the new profile.
    let mut first = profile.clone();
    first
        .files
        .push(rule(d.join("other.txt").to_str().unwrap(), false, true));
    contain.install(inst_id, &first).unwrap();
    contain.install(inst_id, &profile).unwrap();
    maps_hold_exactly(&contain, inst_id, &d);

    if !must_attach {
        if let Err(e) = &attached {
            kernel_refused(e);
        }
        contain.remove(inst_id).unwrap();
        assert_eq!(contain.snapshot(inst_id).files.len(), 0);
        return;
    }
    if let Err(e) = attached {
        panic!("the LSM layer did not attach: {e}");
    }

    let got = results(&run_probe("check", &d, Some(&fx.instance)));
    let eperm = libc::EPERM.to_string();
    let want = [
        ("secret_file", eperm.as_str()),
        ("secret_dir", &eperm),
        ("public_file", "0"),
        ("other_file", "0"),
        ("secretx_file", "0"),
        ("single_file", &eperm),
        ("unix_denied", &eperm),
        ("unix_allowed", "0"),
        ("unix_relative", &eperm),
        ("dgram_denied", &eperm),
        ("dgram_allowed", "0"),
        ("unix_abstract", "0"),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}: {got:?}");
    }
    // Outside the instance nothing is refused.
    let outside = results(&run_probe("check", &d, None));
    assert_eq!(outside.get("secret_file").map(String::as_str), Some("0"));

    let want_events = |e: &ContainEvent| -> Option<&'static str> {
        let p = |s: &str| d.join(s).display().to_string();
        match &e.kind {
            ContainEventKind::FileOpen { path, .. } if *path == p("secret/key.txt") => Some("file"),
            ContainEventKind::UnixConnect {
                addr: UnixAddr::Pathname(s),
            } if *s == p("denied.sock") => Some("unix"),
            ContainEventKind::UnixConnect {
                addr: UnixAddr::Pathname(s),
            } if *s == p("denied.dgram") => Some("dgram"),
            ContainEventKind::UnixConnect {
                addr: UnixAddr::Pathname(s),
            } if s == "denied.sock" => Some("relative"),
            _ => None,
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    let landlock = got.get("landlock").is_some_and(|v| v == "0");
    let mut scoped = std::collections::BTreeSet::new();
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < 4 || (landlock && scoped.len() < 3) {
            let ev = tokio::time::timeout_at(deadline, events.next())
                .await
                .unwrap_or_else(|_| panic!("events missing: saw {seen:?} {scoped:?}"))
                .unwrap();
            eprintln!("event: {ev:?}");
            assert_eq!(ev.cgroup_id, inst_id);
            if let Some(k) = want_events(&ev) {
                assert_eq!(ev.errno, libc::EPERM);
                seen.insert(k);
            }
            match &ev.kind {
                ContainEventKind::Signal {
                    target_pid,
                    signal: 0,
                } if *target_pid == std::process::id() => {
                    scoped.insert("signal");
                }
                ContainEventKind::Ptrace { target_pid, .. }
                    if *target_pid == std::process::id() =>
                {
                    scoped.insert("ptrace");
                }
                ContainEventKind::UnixConnect {
                    addr: UnixAddr::Abstract(n),
                } if n == probe::ABSTRACT => {
                    scoped.insert("abstract");
                }
                _ => {}
            }
        }
    });
    if !landlock {
        eprintln!(
            "!! Landlock scoping unavailable here: ptrace/signal/abstract events not checked"
        );
    }
    assert_eq!(contain.lost_events().unwrap(), 0);

    // Per-open cost inside a contained instance against outside.
    let inside = results(&run_probe("bench", &d, Some(&fx.instance)));
    let outside = results(&run_probe("bench", &d, None));
    eprintln!(
        "open+close ns: inside {:?} outside {:?}",
        inside.get("ns"),
        outside.get("ns")
    );

    contain.remove(inst_id).unwrap();
    contain.remove(inst_id).unwrap();
    let after = results(&run_probe("check", &d, Some(&fx.instance)));
    assert_eq!(after.get("secret_file").map(String::as_str), Some("0"));
    drop(ebpf);
}
