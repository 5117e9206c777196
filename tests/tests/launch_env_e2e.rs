//! An operator's launch whose environment holds a vault secret is refused.
//! `cordon run` passes its environment to the agent, so a token the
//! operator exported (or a URL with the token inside) would start the agent
//! holding the very credential the vault keeps from it. The launch fails
//! naming the variable and the entry, the agent never runs, and the secret
//! appears in no output or log; a variable Cordon replaces with a
//! placeholder is not refused, and the agent sees the placeholder.

use std::time::Duration;

use cordon_e2e::secrets::{assert_no_leak, github_token, store};
use cordon_e2e::world::{all_output, show};
use cordon_e2e::{Daemon, DaemonOpts, World, require_root_or_skip, run_with_timeout};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[credentials]
github = "gh-key"
"#;

#[test]
fn a_launch_whose_environment_holds_a_vault_secret_is_refused_and_the_agent_never_runs() {
    require_root_or_skip!();
    let mut w = World::start(POLICY).unwrap();
    let opts = DaemonOpts::new(&w.policies.path(), w.dns.addr())
        .upstream_ca(&w.ca.pem_path())
        .env("CORDON_LOG", "debug");
    w.daemon = Daemon::start(opts).unwrap();
    let token = github_token();
    store(&w.daemon, "gh-key", &token).unwrap();

    for (var, value) in [
        ("DEPLOY_TOKEN", token.clone()),
        (
            "REPO_URL",
            format!("https://x-access-token:{token}@github.com/o/r"),
        ),
    ] {
        let script = format!("echo agent-ran; echo \"${var}\"");
        let mut cmd = w.daemon.agent("leaky", &["/bin/sh", "-c", &script]);
        cmd.env(var, &value);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
        assert!(
            !out.status.success(),
            "{var}: the launch went through: {}",
            show(&out)
        );
        let text = String::from_utf8_lossy(&all_output(&out)).into_owned();
        assert!(
            text.contains(var) && text.contains("\"gh-key\""),
            "{var}: the refusal does not name the variable and the entry: {text}"
        );
        assert!(!text.contains("agent-ran"), "{var}: the agent ran: {text}");
        assert_no_leak(
            &format!("{var}: cordon run's output"),
            text.as_bytes(),
            &[&token],
        );
    }

    // GITHUB_TOKEN is the connector's placeholder variable: Cordon sets it
    // for the agent, so the real value never reaches it.
    let mut cmd = w
        .daemon
        .agent("leaky", &["/bin/sh", "-c", "echo \"token=$GITHUB_TOKEN\""]);
    cmd.env("GITHUB_TOKEN", &token);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&all_output(&out)).into_owned();
    assert!(
        text.contains("token=cordon-placeholder-github"),
        "the agent did not get the placeholder: {text}"
    );
    assert_no_leak("the agent's output", text.as_bytes(), &[&token]);
    assert_no_leak("the daemon log", w.daemon.log().as_bytes(), &[&token]);
}
