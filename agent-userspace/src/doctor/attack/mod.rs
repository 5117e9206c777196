//! `cordon doctor --attack`: the battery, end to end. Every technique runs
//! twice with fresh markers: once without Cordon (the control, which must
//! escape, or the probe proves nothing on this host) and once as a root
//! agent under a throwaway daemon and deny-everything policy (which must
//! hold). Verdicts come from what the sinks received.
pub mod bait;
pub mod battery;
pub mod netns;
pub mod packets;
pub mod probe;
mod probe_bait;
pub mod session;
pub mod sinks;
pub mod throwaway;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};
use rand::Rng;

use super::report::Check;
use bait::Bait;
use battery::{
    Evidence, KEYRING, OTHER_TERMINAL, PROCESS, ProbeConfig, RAW_DEVICE, SECRET, SHARED_MEMORY,
    TECHNIQUES, TERMINAL, Verdict,
};
use netns::NetNs;
use session::OperatorSession;
use sinks::{Endpoint, Sinks};
use throwaway::{Daemon, Workdir};

const SECTION: &str = "attack";
const LOCK: &str = "/run/cordon-doctor.lock";
const TCP_PORT: u16 = 8080;
const RAW_PORT: u16 = 9999;
const PACKET_PORT: u16 = 9998;
/// Datagrams and the last bytes of a stream may land just after the probe exits.
const SETTLE: Duration = Duration::from_millis(500);

/// `unconfined` runs the "confined" pass without Cordon too: a self-test
/// of the detector, which must then report every technique escaped.
pub fn run(unconfined: bool) -> anyhow::Result<Vec<Check>> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("doctor --attack needs root: it creates a network namespace and a throwaway daemon");
    }
    let lock_file = std::fs::File::create(LOCK).with_context(|| format!("creating {LOCK}"))?;
    // The battery's addresses are fixed, so runs take turns; each is
    // bounded (daemon start, agent run), so waiting ends.
    let _lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, _)) => {
            eprintln!("cordon doctor: waiting for another `cordon doctor --attack` to finish");
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| anyhow::anyhow!("locking {LOCK}: {e}"))?
        }
    };
    let exe = std::env::current_exe().context("finding this binary")?;
    let nonce: String = format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff);

    let work = Workdir::create()?;
    let ns = NetNs::create()?;
    let (control_sink, control_end) = UnixStream::pair()?;
    let (confined_sink, confined_end) = UnixStream::pair()?;
    let abstract_name = format!("cordon-doctor-{nonce}");
    let unix_path = work.0.join("host.sock");
    let sinks = Sinks::start(
        &ns.path(),
        endpoints(&unix_path, &abstract_name, control_sink, confined_sink),
    )?;
    let secret_path = work.0.join("secret/token");
    let key_name = format!("cordon-doctor-{nonce}");
    let config = |run: &str, bait: &Bait| ProbeConfig {
        nonce: nonce.clone(),
        markers: battery::markers(&nonce, run)
            .into_iter()
            .filter(|(id, _)| !battery::READ_BY_THE_AGENT.contains(&id.as_str()))
            .collect(),
        target_v4: netns::TARGET_V4,
        target_v6: netns::TARGET_V6,
        resolver_v4: netns::RESOLVER_V4,
        metadata_v4: netns::METADATA_V4,
        private_v4: netns::PRIVATE_V4,
        tcp_port: TCP_PORT,
        raw_port: RAW_PORT,
        packet_port: PACKET_PORT,
        host_if: ns.host_if.clone(),
        unix_path: unix_path.clone(),
        abstract_name: abstract_name.clone(),
        secret_path: secret_path.clone(),
        key_name: key_name.clone(),
        other_terminal: bait.terminal().to_path_buf(),
        raw_device: bait.disk().map(Path::to_path_buf),
        shm_key: bait.shm_key(),
    };
    // Each run starts in its own operator session: a terminal, and a
    // keyring whose one key holds the run's keyring marker.
    let session =
        |run: &str| OperatorSession::open(&key_name, &battery::markers(&nonce, run)[KEYRING]);

    let plant = |run: &str| -> anyhow::Result<()> {
        let m = &battery::markers(&nonce, run)[SECRET];
        // World-readable on purpose: only Cordon stands in the way.
        std::fs::write(&secret_path, format!("{m}\n"))?;
        Ok(std::fs::set_permissions(
            &secret_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )?)
    };

    // What the run leaves on the host for the agent to steal, each with
    // its marker, for as long as the run (`bait.rs`).
    let bait = |run: &str| -> anyhow::Result<Bait> {
        let m = battery::markers(&nonce, run);
        Bait::plant(
            &bait::Markers {
                process: &m[PROCESS],
                terminal: &m[OTHER_TERMINAL],
                disk: &m[RAW_DEVICE],
                shm: &m[SHARED_MEMORY],
            },
            &work.0,
        )
    };

    plant("control")?;
    let control_bait = bait("control")?;
    let cfg = serde_json::to_string(&config("control", &control_bait))?;
    let control_session = session("control")?;
    let mut cmd = throwaway::probe_command(&exe, None, &cfg, control_end.as_raw_fd());
    control_session.attach(&mut cmd);
    let control_out = throwaway::run_captured(cmd, &work.0, "control")?;
    std::thread::sleep(SETTLE);
    let mut control_sinks = sinks.received();
    control_sinks.extend(control_session.typed()?);
    drop(control_bait);

    plant("confined")?;
    std::fs::write(
        work.0.join("policies/attack.toml"),
        throwaway::policy(&secret_path),
    )?;
    let confined_bait = bait("confined")?;
    let cfg = serde_json::to_string(&config("confined", &confined_bait))?;
    let confined_session = session("confined")?;
    let (confined_out, _daemon) = if unconfined {
        let mut cmd = throwaway::probe_command(&exe, None, &cfg, confined_end.as_raw_fd());
        confined_session.attach(&mut cmd);
        (throwaway::run_captured(cmd, &work.0, "confined")?, None)
    } else {
        let upstream = SocketAddr::new(IpAddr::V4(netns::UPSTREAM_V4), 53).to_string();
        let daemon = Daemon::start(&exe, &work, &upstream)?;
        let mut cmd = throwaway::probe_command(
            &exe,
            Some(daemon.state_dir()),
            &cfg,
            confined_end.as_raw_fd(),
        );
        confined_session.attach(&mut cmd);
        (
            throwaway::run_captured(cmd, &work.0, "confined")?,
            Some(daemon),
        )
    };
    std::thread::sleep(SETTLE);
    let mut all_sinks = sinks.received();
    all_sinks.extend(confined_session.typed()?);

    let mut checks = vec![
        ran("control", &nonce, &control_out),
        ran("confined", &nonce, &confined_out),
    ];
    let control = Evidence {
        sinks: &control_sinks,
        agent_output: &control_out,
    };
    let confined = Evidence {
        sinks: &all_sinks,
        agent_output: &confined_out,
    };
    let (cm, am) = (
        battery::markers(&nonce, "control"),
        battery::markers(&nonce, "confined"),
    );
    for (id, what) in TECHNIQUES {
        let verdict = battery::judge(
            battery::reached(id, &cm[*id], &control),
            battery::reached(id, &am[*id], &confined),
        );
        checks.push(technique(id, what, verdict, &probe_line(&confined_out, id)));
    }
    Ok(checks)
}

fn endpoints(unix_path: &Path, abstract_name: &str, a: UnixStream, b: UnixStream) -> Vec<Endpoint> {
    let v4 = |ip, port| SocketAddr::new(IpAddr::V4(ip), port);
    let v6 = |port| SocketAddr::new(IpAddr::V6(netns::TARGET_V6), port);
    vec![
        Endpoint::Tcp(v4(netns::TARGET_V4, TCP_PORT)),
        Endpoint::Tcp(v6(TCP_PORT)),
        Endpoint::Udp(v4(netns::TARGET_V4, 443)),
        Endpoint::Udp(v6(443)),
        Endpoint::Udp(v4(netns::RESOLVER_V4, 53)),
        Endpoint::Tcp(v4(netns::RESOLVER_V4, 53)),
        Endpoint::Udp(v4(netns::UPSTREAM_V4, 53)),
        Endpoint::Udp(v4(netns::TARGET_V4, RAW_PORT)),
        Endpoint::Udp(v4(netns::TARGET_V4, PACKET_PORT)),
        Endpoint::Tcp(v4(netns::METADATA_V4, 80)),
        Endpoint::Tcp(v4(netns::PRIVATE_V4, 80)),
        Endpoint::UnixPath(unix_path.to_path_buf()),
        Endpoint::UnixAbstract(abstract_name.to_string()),
        Endpoint::Stream(a),
        Endpoint::Stream(b),
    ]
}

/// Without the probe's closing line a run proves nothing: all "held"
/// could mean the agent never started.
fn ran(run: &str, nonce: &str, out: &[u8]) -> Check {
    let text = String::from_utf8_lossy(out);
    if text.contains(&format!("probe-done {nonce}")) {
        Check::pass(
            SECTION,
            &format!("{run}-run"),
            "the probe ran every technique",
        )
    } else {
        let tail: String = text
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Check::fail(
            SECTION,
            &format!("{run}-run"),
            format!("the probe did not complete; its output ends:\n{tail}"),
            "fix what the output names (a daemon that would not start, a launch refused) and run again",
        )
    }
}

/// What the confined probe printed for `id` (a diagnostic only).
pub fn probe_line(out: &[u8], id: &str) -> String {
    let prefix = format!("probe {id} ");
    String::from_utf8_lossy(out)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| "no report".into())
}

fn technique(id: &str, what: &str, verdict: Verdict, agent_said: &str) -> Check {
    if id == TERMINAL && verdict == Verdict::Inconclusive && session::tiocsti_off_on_this_kernel() {
        return Check::pass(
            SECTION,
            id,
            format!(
                "held: {what}: this kernel refuses TIOCSTI to every process (dev.tty.legacy_tiocsti = 0)"
            ),
        );
    }
    match verdict {
        Verdict::Held => Check::pass(SECTION, id, format!("held: {what} (agent: {agent_said})")),
        Verdict::Escaped => Check::fail(
            SECTION,
            id,
            format!("ESCAPED: {what}: its marker reached the sink (agent: {agent_said})"),
            "enforcement does not hold on this host: run `cordon doctor` for the host and daemon checks, fix every failure, and do not run agents here until this holds",
        ),
        Verdict::Inconclusive => Check::fail(
            SECTION,
            id,
            format!(
                "inconclusive: {what} did not get through even without Cordon, so holding it proves nothing"
            ),
            "something else on this host blocks the probe (firewall, sysctl, missing IPv6); check the control run and try again",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_the_closing_line_fails() {
        assert_eq!(
            ran("confined", "n1", b"probe tcp4 refused: x\nprobe-done n1\n").status,
            super::super::report::Status::Pass
        );
        let c = ran("confined", "n1", b"cordon: error: no daemon\n");
        assert_eq!(c.status, super::super::report::Status::Fail);
        assert!(c.detail.contains("no daemon"));
        // Another run's closing line does not count.
        assert_eq!(
            ran("confined", "n1", b"probe-done n2\n").status,
            super::super::report::Status::Fail
        );
    }

    #[test]
    fn the_agents_line_is_found_per_technique() {
        let out = b"probe tcp4 refused: Connection refused\nprobe tcp6 ok: connected\n";
        assert_eq!(probe_line(out, "tcp4"), "refused: Connection refused");
        assert_eq!(probe_line(out, "quic"), "no report");
    }
}
