//! `cordon doctor` end to end: the checks pass against a real daemon and
//! name what breaks; `--attack` holds every technique on this host, and
//! its detector reports every technique escaped when Cordon is not in the way.

use std::process::{Command, Output};
use std::time::Duration;

use cordon_e2e::daemon::Daemon;
use cordon_e2e::world::{show, start_daemon};
use cordon_e2e::{PolicyDir, TestDns, cordon_bin, require_root_or_skip, run_with_timeout};
use serde_json::Value;

const POLICY: &str = "agents = [\"*\"]\ndefault = \"deny\"\n";
const TECHNIQUES: [&str; 21] = [
    "inherited-fd",
    "tcp4",
    "tcp6",
    "udp4-443",
    "udp6-443",
    "quic",
    "dns-udp",
    "dns-tcp",
    "raw-ip",
    "packet",
    "metadata",
    "private",
    "unix-path",
    "unix-abstract",
    "secret-file",
    "keyring",
    "terminal",
    "process-cmdline",
    "other-terminal",
    "raw-device",
    "shared-memory",
];

fn doctor(args: &[&str]) -> (Output, Value) {
    let out = run_with_timeout(
        Command::new(cordon_bin())
            .arg("doctor")
            .arg("--json")
            .args(args)
            .current_dir("/"),
        Duration::from_secs(240),
    )
    .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", show(&out)));
    (out, report)
}

fn check<'a>(report: &'a Value, section: &str, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["section"] == section && c["name"] == name)
        .unwrap_or_else(|| panic!("no {section}/{name} in {report:#}"))
}

fn against(d: &Daemon, policies: &PolicyDir) -> (Output, Value) {
    let state = d.state_dir().to_string_lossy().into_owned();
    let pol = policies.path().to_string_lossy().into_owned();
    doctor(&["--state-dir", &state, "--policies", &pol])
}

#[test]
fn doctor_passes_on_this_host_with_a_running_daemon() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let (out, report) = against(&daemon, &policies);
    assert!(out.status.success(), "{report:#}\n{}", show(&out));
    assert_eq!(report["ok"], true);
    for (section, name) in [
        ("host", "cgroup2"),
        ("host", "bpf"),
        ("host", "btf"),
        ("host", "lsm"),
        ("host", "bpffs"),
        ("daemon", "health"),
        ("daemon", "programs"),
        ("daemon", "ca"),
        ("daemon", "vault-key"),
        ("daemon", "audit"),
        ("config", "policies"),
    ] {
        assert_eq!(
            check(&report, section, name)["status"],
            "pass",
            "{report:#}"
        );
    }
    // Optional by design: attached where the kernel loads it, a warning otherwise.
    let lsm = check(&report, "daemon", "contain-lsm");
    assert!(lsm["status"] == "pass" || lsm["status"] == "warn", "{lsm}");
}

#[test]
fn doctor_names_a_detached_program_and_a_broken_policy_with_their_fixes() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let status: Value =
        serde_json::from_slice(&daemon.cordon(&["status"]).unwrap().stdout).unwrap();
    let ns = std::path::Path::new(status["cgroup_parent"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Unpinning a link the daemon does not hold detaches its program.
    let pins = std::fs::read_dir(format!("/sys/fs/bpf/{ns}"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(pins.join("link_cordon_egress")).unwrap();
    policies.write("broken.toml", "agents = [\n").unwrap();

    let (out, report) = against(&daemon, &policies);
    assert!(!out.status.success(), "{report:#}");
    let programs = check(&report, "daemon", "programs");
    assert_eq!(programs["status"], "fail", "{report:#}");
    assert!(
        programs["detail"]
            .as_str()
            .unwrap()
            .contains("link_cordon_egress"),
        "{programs}"
    );
    assert!(programs["fix"].as_str().unwrap().contains("restart"));
    let pol = check(&report, "config", "policies");
    assert_eq!(pol["status"], "fail", "{report:#}");
    assert!(
        pol["detail"].as_str().unwrap().contains("broken.toml"),
        "{pol}"
    );
}

#[test]
fn doctor_attack_holds_every_technique_on_this_host() {
    require_root_or_skip!();
    let (out, report) = doctor(&["--attack"]);
    assert!(out.status.success(), "{report:#}\n{}", show(&out));
    for run in ["control-run", "confined-run"] {
        assert_eq!(
            check(&report, "attack", run)["status"],
            "pass",
            "{report:#}"
        );
    }
    for t in TECHNIQUES {
        let c = check(&report, "attack", t);
        assert_eq!(c["status"], "pass", "{report:#}");
        assert!(c["detail"].as_str().unwrap().starts_with("held"), "{c}");
    }
}

#[test]
fn doctor_attack_reports_every_escape_when_cordon_is_not_in_the_way() {
    require_root_or_skip!();
    let (out, report) = doctor(&["--attack", "--attack-unconfined"]);
    assert!(!out.status.success(), "{report:#}");
    assert_eq!(report["ok"], false);
    for t in TECHNIQUES {
        let c = check(&report, "attack", t);
        assert_eq!(c["status"], "fail", "{report:#}");
        assert!(
            c["detail"].as_str().unwrap().starts_with("ESCAPED"),
            "{t} was not seen escaping: {c}"
        );
    }
}
