//! The web console against a real daemon: a real browser approves a held
//! request and kills an agent; requests without a session, without the
//! CSRF token, from another origin or for another host change nothing;
//! and an agent in its cgroup cannot reach the console at all (refused by
//! the proxy and recorded).
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cordon_e2e::agent_cgroup::{RunningAgent, is_frozen, wait_frozen};
use cordon_e2e::browser::require_browser;
use cordon_e2e::operator::{Background, host_curl, wait_for_pending};
use cordon_e2e::world::show;
use cordon_e2e::{World, require_root_or_skip, workspace_root};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "fetch-needs-a-human"
action = "http.request"
hosts = ["allowed.test"]
decision = "approve"
approval_timeout = "90s"
reason = "fetches wait for an operator"
"#;

/// A second file, added while the daemon runs: a reload in the history, and
/// a credential binding for the vault view.
const DEPLOYER_POLICY: &str = r#"
agents = ["deployer"]
default = "deny"

[credentials]
github = "deployer-github"

# A per-action binding: the vault view lists it with its `when`.
[[credentials.stripe]]
entry = "deployer-stripe"
when = 'action.startsWith("stripe.refund.")'
"#;
const SECRET: &str = "ghp_consoleTestSecretValue0123456789";

const CONSOLE_CONFIG: &str = "[console]\nlisten = \"127.0.0.1:0\"\n";
const MARKER: &str = "/console-marker";
const NOTICE: Duration = Duration::from_secs(15);

fn world() -> World {
    World::start_configured(POLICY, CONSOLE_CONFIG).unwrap()
}

/// `http://127.0.0.1:PORT`, from `cordon status`.
fn console_url(w: &World) -> String {
    let status = w.status().unwrap();
    let addr = status["console"]
        .as_str()
        .unwrap_or_else(|| panic!("no console in status: {status}"));
    format!("http://{addr}")
}

fn console_token(w: &World) -> String {
    let out = w.daemon.cordon(&["console", "token"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn spawn(w: &World, name: &str, cmd: &[&str]) -> RunningAgent {
    let child = w
        .agent(name, cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    RunningAgent::new(child)
}

fn cgroup_parent(w: &World) -> PathBuf {
    PathBuf::from(w.status().unwrap()["cgroup_parent"].as_str().unwrap())
}

fn marker_hits(w: &World) -> usize {
    w.http
        .received()
        .iter()
        .filter(|r| r.path == MARKER)
        .count()
}

#[test]
fn in_a_real_browser_the_console_approves_a_held_request_and_kills_an_agent() {
    require_root_or_skip!();
    let Some(browser) = require_browser("console_e2e::in_a_real_browser") else {
        return;
    };
    let w = world();
    let url = console_url(&w);
    let token = console_token(&w);
    let sleeper = spawn(&w, "sleeper", &["/bin/sleep", "120"]);
    let sleeper_cg = sleeper.instance_cgroup(&cgroup_parent(&w)).unwrap();
    let fetch = Background::start(
        w.agent(
            "fetcher",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "80",
                "-w",
                "\n%{http_code}",
                &format!("http://allowed.test{MARKER}"),
            ],
        ),
        Duration::from_secs(90),
    );
    let pending = wait_for_pending(&w.daemon, "http.request", NOTICE).unwrap();
    let timed = Background::start(
        w.agent(
            "fetcher2",
            &[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "80",
                &format!("http://allowed.test{MARKER}-2"),
            ],
        ),
        Duration::from_secs(90),
    );
    cordon_e2e::wait_until("two approvals pending", NOTICE, || {
        cordon_e2e::operator::pending(&w.daemon).is_ok_and(|p| p.len() == 2)
    })
    .unwrap();
    assert_eq!(marker_hits(&w), 0, "forwarded before approval");
    w.policies.write("deployer.toml", DEPLOYER_POLICY).unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let mut set = w
        .daemon
        .cordon_command(&["vault", "set", "deployer-github", "--from-stdin"]);
    set.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), SECRET.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));

    let shots = match std::env::var_os("CORDON_CONSOLE_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        // Under target/, overwritten by the next run, never left in the host's /tmp.
        None => workspace_root().join("target/console-shots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let script = workspace_root().join("tests/src/py/console_browser.py");
    let out = Command::new(&browser.python)
        .arg(&script)
        .args([
            url.as_str(),
            token.as_str(),
            &shots.to_string_lossy(),
            "sleeper",
            SECRET,
        ])
        .env("CORDON_CHROMIUM", &browser.chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "browser run failed: {}", show(&out));

    let fetched = fetch.join().unwrap();
    let text = String::from_utf8_lossy(&fetched.stdout).to_string();
    assert!(text.trim_end().ends_with("200"), "{}", show(&fetched));
    assert_eq!(
        marker_hits(&w),
        1,
        "the approved request reached the upstream once"
    );
    wait_frozen(&sleeper_cg, true, NOTICE).unwrap();
    let timed = timed.join().unwrap();
    assert!(timed.status.success(), "{}", show(&timed));

    let t = w.trail().unwrap();
    let granted: Vec<_> = t
        .records()
        .iter()
        .filter(|r| r.kind.as_str() == "approval.granted")
        .collect();
    assert_eq!(granted.len(), 2, "{t}");
    for g in &granted {
        let by = g.approver.as_deref().unwrap_or("");
        assert!(by.starts_with("console session "), "approver {by:?}: {t}");
    }
    for kind in ["grant.granted", "grant.revoked"] {
        let by_console = |r: &&cordon_audit::AuditRecord| {
            r.kind.as_str() == kind
                && r.approver
                    .as_deref()
                    .is_some_and(|a| a.starts_with("console session "))
                && r.chain.as_deref() == Some("fetcher2")
        };
        assert_eq!(
            t.records().iter().filter(by_console).count(),
            1,
            "{kind}: {t}"
        );
    }
    assert!(
        t.records().iter().any(|r| r.kind.as_str() == "agent.kill"
            && r.approver
                .as_deref()
                .is_some_and(|a| a.starts_with("console session "))),
        "no kill record by the console session: {t}"
    );
    assert!(!pending.id.is_empty());
    for view in [
        "audit",
        "approvals",
        "agents",
        "grants",
        "policy",
        "learn",
        "vault",
    ] {
        assert!(
            shots.join(format!("{view}.png")).exists(),
            "no screenshot of {view}"
        );
    }
}

/// One request with curl from the host (outside every agent): status code and
/// the response's headers and body.
fn http(url: &str, args: &[&str]) -> (u16, String) {
    let mut all = args.to_vec();
    all.push(url);
    host_curl(&all)
}

fn cookie_of(response: &str) -> String {
    response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim())
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie in {response}"))
        .to_string()
}

fn csrf_of(response: &str) -> String {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["csrf"].as_str().unwrap().to_string()
}

#[test]
fn the_console_changes_nothing_without_a_session_its_csrf_token_its_origin_and_host() {
    require_root_or_skip!();
    let w = world();
    let url = console_url(&w);
    let origin = format!("Origin: {url}");
    let victim = spawn(&w, "victim", &["/bin/sleep", "120"]);
    let victim_cg = victim.instance_cgroup(&cgroup_parent(&w)).unwrap();
    let kill_body = r#"{"target":"victim"}"#;

    let (code, page) = http(&format!("{url}/"), &[]);
    assert_eq!(code, 200);
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'"),
        "{page}"
    );
    let (code, _) = http(&format!("{url}/api/agents"), &[]);
    assert_eq!(code, 401, "read without a session");
    let (code, _) = http(
        &format!("{url}/api/login"),
        &["-H", &origin, "-d", r#"{"token":"guess"}"#],
    );
    assert_eq!(code, 401, "login before any token exists");

    let token = console_token(&w);
    let login = format!(r#"{{"token":"{token}"}}"#);
    let (code, _) = http(
        &format!("{url}/api/login"),
        &["-H", &origin, "-d", r#"{"token":"wrong"}"#],
    );
    assert_eq!(code, 401, "wrong token");
    let (code, _) = http(
        &format!("{url}/api/login"),
        &["-H", "Origin: http://evil.test", "-d", &login],
    );
    assert_eq!(code, 403, "login from another origin");
    let (code, resp) = http(&format!("{url}/api/login"), &["-H", &origin, "-d", &login]);
    assert_eq!(code, 200, "{resp}");
    let cookie = format!("Cookie: {}", cookie_of(&resp));
    let csrf = format!("X-Cordon-CSRF: {}", csrf_of(&resp));
    assert!(!resp.contains(&token), "the token came back in a response");

    let kill = format!("{url}/api/kill");
    let host = format!("Host: evil.test:{}", url.rsplit(':').next().unwrap());
    for (args, want, why) in [
        (
            vec!["-H", &cookie, "-H", &origin, "-d", kill_body],
            403,
            "no CSRF token",
        ),
        (
            vec!["-H", &cookie, "-H", &csrf, "-d", kill_body],
            403,
            "no Origin",
        ),
        (
            vec![
                "-H",
                &cookie,
                "-H",
                &csrf,
                "-H",
                "Origin: http://evil.test",
                "-d",
                kill_body,
            ],
            403,
            "another origin",
        ),
        (
            vec!["-H", &csrf, "-H", &origin, "-d", kill_body],
            401,
            "no session",
        ),
        (
            vec![
                "-H", &cookie, "-H", &csrf, "-H", &origin, "-H", &host, "-d", kill_body,
            ],
            421,
            "another host name (DNS rebinding)",
        ),
    ] {
        let (code, resp) = http(&kill, &args);
        assert_eq!(code, want, "{why}: {resp}");
        assert!(!is_frozen(&victim_cg).unwrap(), "killed despite {why}");
    }
    let (code, resp) = http(
        &kill,
        &["-H", &cookie, "-H", &csrf, "-H", &origin, "-d", kill_body],
    );
    assert_eq!(code, 200, "{resp}");
    wait_frozen(&victim_cg, true, NOTICE).unwrap();

    // A new token ends the session opened with the old one.
    console_token(&w);
    let (code, _) = http(&format!("{url}/api/agents"), &["-H", &cookie]);
    assert_eq!(code, 401, "a session outlived its token");
}

#[test]
fn an_agent_cannot_reach_the_console_and_its_attempt_is_recorded() {
    require_root_or_skip!();
    let w = world();
    let url = console_url(&w);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let token = console_token(&w);
    let victim = spawn(&w, "victim", &["/bin/sleep", "120"]);
    let victim_cg = victim.instance_cgroup(&cgroup_parent(&w)).unwrap();
    // The agent even knows the token: the port itself is out of its reach.
    let script = format!(
        "curl -sS --max-time 5 -H 'Origin: {url}' -d '{{\"token\":\"{token}\"}}' {url}/api/login; echo rc=$?"
    );
    let out: Output = w.run("intruder", &["/bin/sh", "-c", &script]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains("csrf"),
        "the agent logged in: {}",
        show(&out)
    );
    assert!(
        !text.contains("rc=0"),
        "the agent reached the console: {}",
        show(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!is_frozen(&victim_cg).unwrap());

    let t = w.trail().unwrap();
    let refused: Vec<_> = t
        .records()
        .iter()
        .filter(|r| {
            r.chain.as_deref() == Some("intruder")
                && r.params.get("port") == Some(&serde_json::json!(port))
        })
        .collect();
    assert!(!refused.is_empty(), "no record of the attempt: {t}");
    for r in &refused {
        assert_eq!(r.decision.map(|d| d.as_str()), Some("deny"), "{t}");
        assert!(
            r.reason
                .as_deref()
                .unwrap_or("")
                .contains("Cordon's own listeners"),
            "{t}"
        );
    }
}
