//! An agent gets nothing out of its operator's login session. `cordon run`
//! starts on the operator's terminal and inherits the operator's session
//! keyring. Typed into that terminal (`TIOCSTI`), a command line would be
//! read and run by the operator's shell once the agent exits, outside its
//! cgroup; and possessing the keyring is what most key permissions test,
//! so the operator's keys would be the agent's to read. Each agent here
//! runs on a real pseudo-terminal that is its controlling terminal, in a
//! session keyring holding a marker key, and tries both; the test then
//! reads what the shell would read next and what the agent printed.

use std::process::Command;
use std::time::Duration;

use cordon_e2e::daemon::Daemon;
use cordon_e2e::host::{ATTEMPT_PRELUDE, HostUser, agent_as, outcomes};
use cordon_e2e::operator_session::{
    READ_SESSION_KEY, TYPE_INTO_TERMINAL, Terminal, with_session_key,
};
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{PYTHON, show, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip, run_with_timeout};
use serde_json::json;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

const ATTACKS: &str = r#"
attempt("keyring", lambda: read_session_key(cfg["key"]))
attempt("terminal", lambda: type_into_terminal(cfg["line"]))
print(json.dumps(res))
"#;

fn script() -> String {
    format!("{ATTEMPT_PRELUDE}{READ_SESSION_KEY}{TYPE_INTO_TERMINAL}{ATTACKS}")
}

/// Runs `cmd` (a `cordon run`) on a fresh terminal in a keyring holding a
/// marker key, and asserts the agent got neither.
fn gets_nothing(mut cmd: Command, cfg: &Cfg, who: &str) {
    let terminal = Terminal::open().unwrap();
    terminal.attach(&mut cmd);
    with_session_key(&mut cmd, &cfg.key, &cfg.secret).unwrap();
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{who}: {}", show(&out));

    let typed = terminal.pending_input().unwrap();
    assert!(
        !typed.contains(&cfg.line),
        "{who} typed into its operator's terminal: {typed:?}"
    );
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !everything.contains(&cfg.secret),
        "{who} read its operator's key: {everything}"
    );
    let res = outcomes(&out);
    for attack in ["keyring", "terminal"] {
        assert_eq!(
            res[attack],
            json!({"ok": false, "errno": libc::EPERM}),
            "{who}, {attack}: {res}"
        );
    }
}

struct Cfg {
    key: String,
    secret: String,
    line: String,
}

impl Cfg {
    fn new() -> Cfg {
        Cfg {
            key: format!("cordon-e2e-{}", random_alnum(8)),
            secret: format!("MARKER-{}", random_alnum(24)),
            line: format!("echo MARKER-{}", random_alnum(24)),
        }
    }

    fn json(&self) -> String {
        json!({"key": self.key, "line": self.line}).to_string()
    }
}

fn daemon() -> (TestDns, cordon_e2e::PolicyDir, Daemon) {
    let dns = TestDns::start().unwrap();
    let (policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    (dns, policies, daemon)
}

#[test]
fn an_agent_running_as_nobody_neither_types_into_its_operators_terminal_nor_reads_its_keys() {
    require_root_or_skip!();
    let (_dns, _policies, daemon) = daemon();
    let cfg = Cfg::new();
    let nobody = HostUser::nobody();
    let work = nobody.workdir().unwrap();
    let cmd = agent_as(
        &daemon,
        &nobody,
        "operator-session",
        work.path(),
        &[PYTHON, "-c", &script(), &cfg.json()],
    );
    gets_nothing(cmd, &cfg, "an agent running as nobody");
}

/// Root in its own user namespace: the terminal and the keyring it
/// inherited are still the operator's.
#[test]
fn a_root_agent_neither_types_into_its_operators_terminal_nor_reads_its_keys() {
    require_root_or_skip!();
    let (_dns, _policies, daemon) = daemon();
    let cfg = Cfg::new();
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(cordon_bin());
    cmd.args(["run", "--agent", "operator-session", "--state-dir"])
        .arg(daemon.state_dir())
        .args(["--allow-root", "--", PYTHON, "-c", &script(), &cfg.json()])
        .current_dir(work.path())
        .env_remove("SUDO_UID");
    gets_nothing(cmd, &cfg, "a root agent");
}
