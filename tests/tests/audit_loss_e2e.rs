//! Landlock refusal records the daemon never received are not a silent gap:
//! the trail says how many were lost and where. The refusals themselves
//! hold whatever happens to their records. Two places lose them, and each
//! test makes one of them lose records for real:
//! - the kernel (host-wide), held here to one record a second;
//! - the daemon's own audit-stream socket, which overruns while the daemon
//!   is stopped and an agent keeps being refused.
//!
//! The tests change host-wide kernel state and stop the daemon, so they run
//! one at a time.

use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use cordon_e2e::host::{Handshake, HostUser, agent_as};
use cordon_e2e::kernel_audit::{self, RateLimit};
use cordon_e2e::process::wait_child;
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::trail::{Trail, read_trail};
use cordon_e2e::world::{PYTHON, start_daemon};
use cordon_e2e::{Daemon, TestDns, require_root_or_skip, wait_until};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

/// Says it is ready, waits for the go file, then tries to read the
/// credential `n` times and prints how many reads succeeded.
const PROBER: &str = r#"
import os, sys, time
cred, ready, go, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
open(ready, "w").close()
deadline = time.time() + 30
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.02)
read = 0
for _ in range(n):
    try:
        open(cred).read()
        read += 1
    except OSError:
        pass
print("read", read)
"#;

struct Prober {
    child: std::process::Child,
    hs: Handshake,
    _work: tempfile::TempDir,
}

/// An agent (as `nobody`) ready to be refused the owner's credential `n`
/// times once told to go.
fn prober(daemon: &Daemon, n: usize) -> Prober {
    let credential = HostUser::regular()
        .unwrap()
        .plant_aws_credentials(&random_alnum(24))
        .unwrap();
    let work = HostUser::nobody().workdir().unwrap();
    let hs = Handshake::in_dir(work.path());
    let args = [&credential, &hs.ready, &hs.go].map(|p| p.display().to_string());
    let n = n.to_string();
    let argv = [PYTHON, "-c", PROBER, &args[0], &args[1], &args[2], &n];
    let child = agent_as(daemon, &HostUser::nobody(), "prober", work.path(), &argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    hs.wait_ready().unwrap();
    Prober {
        child,
        hs,
        _work: work,
    }
}

impl Prober {
    /// Lets it go and waits for it; asserts no read got through.
    fn run(mut self) {
        self.hs.go().unwrap();
        let status = wait_child(&mut self.child, Duration::from_secs(60)).unwrap();
        assert!(
            status.is_some_and(|s| s.success()),
            "the agent did not finish: {status:?}"
        );
        let mut out = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut out).unwrap();
        assert_eq!(
            out.trim(),
            "read 0",
            "every read of the credential is refused"
        );
    }
}

/// The sum of the `lost` counts of `source`'s `contain.events_lost` records.
fn lost_of(t: &Trail, source: &str) -> u64 {
    t.matching(
        "contain.events_lost",
        &[("source", serde_json::json!(source))],
    )
    .iter()
    .filter_map(|r| r.params.get("lost").and_then(|v| v.as_u64()))
    .sum()
}

/// Waits (bounded) for the trail to own up to at least `at_least` lost
/// records from `source`, and returns it.
fn trail_owning_up(daemon: &Daemon, source: &str, at_least: u64) -> Trail {
    let mut last = None;
    let owned_up = wait_until(
        &format!("a contain.events_lost record from {source}"),
        Duration::from_secs(20),
        || {
            let t = read_trail(daemon.state_dir()).unwrap();
            let done = lost_of(&t, source) >= at_least;
            last = Some(t);
            done
        },
    );
    let t = last.unwrap();
    assert!(
        owned_up.is_ok(),
        "the trail does not say {at_least} records from {source} were lost:\n{t}"
    );
    t
}

#[test]
fn records_the_kernel_dropped_are_counted_in_the_trail() {
    require_root_or_skip!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let agent = prober(&daemon, 400);

    let before = kernel_audit::status().unwrap().lost;
    let limit = RateLimit::set(1).unwrap();
    agent.run();
    drop(limit);
    let dropped = kernel_audit::status().unwrap().lost.wrapping_sub(before);
    assert!(
        dropped > 0,
        "precondition: at one record a second, the kernel dropped none of 400 refusals' records"
    );

    let t = trail_owning_up(&daemon, "kernel-audit", u64::from(dropped));
    let rec = t
        .matching("contain.events_lost", &[])
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(rec.kind, cordon_audit::EventKind::ContainRefused, "{t}");
}

#[test]
fn an_overrun_of_the_daemons_audit_stream_is_counted_in_the_trail() {
    require_root_or_skip!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let agent = prober(&daemon, 3000);

    // Stopped, the daemon reads nothing: its socket's buffer (a few hundred
    // records) fills and the kernel drops the rest for it.
    let paused = daemon.pause().unwrap();
    agent.run();
    drop(paused);

    let t = trail_owning_up(&daemon, "audit-stream", 1);
    // What did arrive is still itemised.
    assert!(
        !t.matching("file.open", &[]).is_empty(),
        "the refusals read before the overrun are recorded:\n{t}"
    );
}
