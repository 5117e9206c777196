//! Thread per core, end to end: with `[proxy] cores = 2` the kernel spreads an agent's
//! connections over both cores' listeners (each core counts its accepts in
//! `cordon_proxy_accepted_total{core}`), a kill cuts the agent's connections on every core, and
//! an upgrade in place to an image with another core count serves every listener it was handed
//! (a listener nobody accepts on would leave the connects the kernel gives it hanging). Every
//! daemon thread runs with the short scheduler slice (`daemon/sched.rs`); agents do not.

use std::net::{IpAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use cordon_e2e::agent_cgroup::RunningAgent;
use cordon_e2e::daemon::{Daemon, DaemonOpts, PolicyDir, strip_ansi};
use cordon_e2e::world::{PYTHON, agent_command, show, stdout, world_writable_dir};
use cordon_e2e::{HttpServer, NetNs, TestDns, require_root_or_skip, run_with_timeout, wait_until};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns-test"
action = "dns.query"
hosts = ["allowed.test"]
decision = "allow"

[[rule]]
id = "http-allowed"
action = "http.request"
hosts = ["allowed.test"]
decision = "allow"
"#;

const T: Duration = Duration::from_secs(15);

/// `python3 -c KEEP N STOP`: opens N keep-alive connections, then sends a request on each,
/// every 100 ms, until STOP exists. A connection that fails is reported once as
/// `closed <i> <error>` and not used again (never reopened).
const KEEP: &str = r#"
import http.client, os, sys, time
n, stop = int(sys.argv[1]), sys.argv[2]
conns = []
for i in range(n):
    c = http.client.HTTPConnection("allowed.test", 80, timeout=5)
    c.request("GET", "/keep/open/%d" % i)
    r = c.getresponse()
    r.read()
    print("open", i, r.status, flush=True)
    conns.append(c)
rnd = 0
while not os.path.exists(stop):
    for i, c in enumerate(conns):
        if c is None:
            continue
        try:
            c.request("GET", "/keep/%d/%d" % (i, rnd))
            r = c.getresponse()
            r.read()
        except Exception as e:
            print("closed", i, type(e).__name__, flush=True)
            conns[i] = None
    rnd += 1
    time.sleep(0.1)
print("done", flush=True)
"#;

/// `python3 -c FRESH N TAG`: N requests, each on a new connection with a 5 s bound.
const FRESH: &str = r#"
import http.client, sys
for i in range(int(sys.argv[1])):
    try:
        c = http.client.HTTPConnection("allowed.test", 80, timeout=5)
        c.request("GET", "/%s/%d" % (sys.argv[2], i))
        r = c.getresponse()
        r.read()
        c.close()
        print("ok" if r.status == 200 else "status-%d" % r.status, flush=True)
    except Exception as e:
        print("fail", type(e).__name__, flush=True)
"#;

struct Cores {
    _ns: NetNs,
    http: HttpServer,
    _dns: TestDns,
    _policies: PolicyDir,
    daemon: Daemon,
    config: tempfile::TempDir,
    metrics_port: u16,
}

impl Cores {
    fn start(cores: usize) -> Cores {
        let ns = NetNs::new().unwrap();
        let http = HttpServer::start(&ns).unwrap();
        let dns = TestDns::start().unwrap();
        dns.set("allowed.test", &[IpAddr::V4(ns.v4())]);
        let policies = PolicyDir::new().unwrap();
        policies.write("e2e.toml", POLICY).unwrap();
        let config = tempfile::tempdir().unwrap();
        let metrics_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        write_config(&config, metrics_port, cores);
        let conf = config.path().join("cordon.toml");
        let daemon = Daemon::start(
            DaemonOpts::new(&policies.path(), dns.addr())
                .arg("--config")
                .arg(&conf.to_string_lossy()),
        )
        .unwrap();
        Cores {
            _ns: ns,
            http,
            _dns: dns,
            _policies: policies,
            daemon,
            config,
            metrics_port,
        }
    }

    fn set_cores(&self, cores: usize) {
        write_config(&self.config, self.metrics_port, cores);
    }

    /// `cordon_proxy_accepted_total{core}` now, by core.
    fn accepted(&self) -> Vec<u64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        let out = run_with_timeout(
            Command::new("curl").args(["-sS", "--max-time", "10", "--noproxy", "*", &url]),
            T,
        )
        .unwrap();
        let text = stdout(&out);
        let mut by_core = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("cordon_proxy_accepted_total{core=\"") else {
                continue;
            };
            let (core, value) = rest.split_once("\"} ").unwrap();
            let core: usize = core.parse().unwrap();
            if by_core.len() <= core {
                by_core.resize(core + 1, 0);
            }
            by_core[core] = value.trim().parse::<f64>().unwrap() as u64;
        }
        by_core
    }

    fn hits(&self, prefix: &str) -> usize {
        self.http
            .received()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    fn spawn(&self, name: &str, args: &[&str]) -> RunningAgent {
        let child = agent_command(&self.daemon, name, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        RunningAgent::new(child)
    }

    /// N fresh connections, each must be answered.
    fn assert_fresh_connections_answered(&self, n: usize, tag: &str) {
        let out = self
            .daemon
            .run_agent(
                "fresh",
                &[PYTHON, "-c", FRESH, &n.to_string(), tag],
                Duration::from_secs(120),
            )
            .unwrap();
        let lines = stdout(&out);
        let ok = lines.lines().filter(|l| *l == "ok").count();
        assert_eq!(
            ok,
            n,
            "connections left unanswered: {}\n{}",
            show(&out),
            self.daemon.log()
        );
    }

    /// `cordon upgrade` to the same binary, now reading `cores` from the config.
    fn upgrade_to(&self, cores: usize) {
        self.set_cores(cores);
        let up = self
            .daemon
            .cordon_with_timeout(&["upgrade"], Duration::from_secs(90))
            .unwrap();
        assert!(up.status.success(), "cordon upgrade: {}", show(&up));
        wait_until("the new image's metrics", T, || {
            self.accepted().len() == cores
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.daemon.log()));
    }
}

fn write_config(dir: &tempfile::TempDir, metrics_port: u16, cores: usize) {
    let text = format!("metrics_addr = \"127.0.0.1:{metrics_port}\"\n\n[proxy]\ncores = {cores}\n");
    std::fs::write(dir.path().join("cordon.toml"), text).unwrap();
}

/// The `N` of `killed in .. us: .. N connections cut`.
fn connections_cut(kill_output: &str) -> usize {
    kill_output
        .split(" connections cut")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `N connections cut`: {kill_output}"))
}

#[test]
fn connections_land_on_both_cores_and_a_kill_cuts_them_on_both() {
    require_root_or_skip!();
    const N: usize = 16;
    let c = Cores::start(2);
    assert_eq!(c.accepted(), vec![0, 0], "{}", c.daemon.log());
    let stop_dir = world_writable_dir().unwrap();
    let stop = stop_dir.path().join("stop");
    let mut agent = c.spawn(
        "keeper",
        &[PYTHON, "-c", KEEP, &N.to_string(), &stop.to_string_lossy()],
    );
    // Every connection answered twice after it opened: all N are live.
    wait_until("two rounds on every connection", T, || {
        c.hits("/keep/") >= 3 * N
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.daemon.log()));
    let accepted = c.accepted();
    assert_eq!(accepted.iter().sum::<u64>(), N as u64, "{accepted:?}");
    // 16 connects from random client ports: both cores take some (all on one core by chance:
    // 2 in 65,536).
    assert!(
        accepted.iter().all(|n| *n > 0),
        "the kernel gave one core every connection: {accepted:?}"
    );

    let kill = c
        .daemon
        .cordon(&["kill", "keeper", "--reason", "e2e"])
        .unwrap();
    assert!(kill.status.success(), "{}", show(&kill));
    let cut = connections_cut(&stdout(&kill));
    assert_eq!(
        cut,
        N,
        "the kill did not cut every core's connections: {}",
        show(&kill)
    );
    // A request the proxy forwarded just before the cut may still land upstream; nothing after.
    std::thread::sleep(Duration::from_millis(300));
    let at_kill = c.hits("/keep/");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.hits("/keep/"), at_kill, "requests went on after the kill");

    // Thawed, the agent finds every connection it held closed, on both cores.
    let resume = c.daemon.cordon(&["resume", "keeper"]).unwrap();
    assert!(resume.status.success(), "{}", show(&resume));
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&stop, b"").unwrap();
    let out = agent.wait(T).unwrap().expect("the agent did not stop");
    let lines = stdout(&out);
    let closed = lines.lines().filter(|l| l.starts_with("closed ")).count();
    assert_eq!(closed, N, "connections that outlived the kill: {lines}");
    assert_eq!(
        c.hits("/keep/"),
        at_kill,
        "a cut connection still reached the upstream"
    );
}

#[test]
fn an_upgrade_to_fewer_or_more_cores_serves_every_handed_over_listener() {
    require_root_or_skip!();
    let c = Cores::start(2);
    c.assert_fresh_connections_answered(10, "before");
    assert_eq!(c.accepted().len(), 2);

    // Two pairs handed to one core: it accepts on both, so no connect is stranded.
    c.upgrade_to(1);
    let log = strip_ansi(&c.daemon.log());
    assert!(log.contains("handed_over_pairs=2 cores=1"), "{log}");
    c.assert_fresh_connections_answered(40, "one-core");
    assert_eq!(c.accepted(), vec![40]);

    // Two pairs handed to three cores: a third pair joins the reuseport group, and the kernel
    // gives every core some of the connects (none for one core by chance: 3 in 10^7).
    c.upgrade_to(3);
    let log = strip_ansi(&c.daemon.log());
    assert!(
        log.contains("handed_over_pairs=2 cores=3 growth=Joined(1)"),
        "{log}"
    );
    c.assert_fresh_connections_answered(40, "three-cores");
    let accepted = c.accepted();
    assert_eq!(accepted.iter().sum::<u64>(), 40, "{accepted:?}");
    assert!(accepted.iter().all(|n| *n > 0), "{accepted:?}");
    assert_eq!(c.hits("/one-core/") + c.hits("/three-cores/"), 80);
}

/// `se.slice` (ns) of every thread of `pid`, as the kernel reports it.
fn thread_slices(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(sched) = std::fs::read_to_string(task.join("sched")) else {
            continue; // the thread ended meanwhile
        };
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let slice = sched
            .lines()
            .find(|l| l.starts_with("se.slice"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
            .expect("se.slice in /proc/PID/task/TID/sched (Linux 6.6+)");
        out.push((name.trim().to_string(), slice));
    }
    out
}

/// `python3 -c SLICE`: prints its own thread's scheduler slice in ns.
const SLICE: &str = r#"
for line in open("/proc/thread-self/sched"):
    if line.startswith("se.slice"):
        print(line.split(":")[1].strip())
"#;

#[test]
fn every_daemon_thread_runs_with_the_short_slice_and_agents_keep_the_default() {
    require_root_or_skip!();
    let c = Cores::start(2);
    let pid = c.daemon.pid().expect("daemon pid");
    let slices = thread_slices(pid);
    let names: Vec<&str> = slices.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("cordon-core-"))
            .count()
            >= 2,
        "the proxy cores' threads are missing: {names:?}"
    );
    let long: Vec<_> = slices.iter().filter(|(_, s)| *s != 100_000).collect();
    assert!(
        long.is_empty(),
        "daemon threads without the 100 µs slice: {long:?}"
    );
    let out = c
        .daemon
        .run_agent("slice", &[PYTHON, "-c", SLICE], Duration::from_secs(30))
        .unwrap();
    let agent: u64 = stdout(&out)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", show(&out)));
    assert_ne!(agent, 100_000, "an agent inherited the daemon's slice");
}
