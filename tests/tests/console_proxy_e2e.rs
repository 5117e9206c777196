//! The web console on a unix socket behind the operator's own reverse proxy (Debian's nginx,
//! basic authentication, the user forwarded in a header), against a real daemon:
//! - the socket is shared with the proxy's group only (0660), and the proxy's users reach
//!   the live audit view without a Cordon login; a change still needs the console's CSRF
//!   token and Origin, a foreign Host is refused, and the approver in the trail is the user
//!   the proxy named;
//! - without the proxy's authentication nothing gets through, and a client straight on the
//!   socket that names no user is refused;
//! - an agent cannot use the socket: containment's `connect_unix` program stops it, and an
//!   agent whose policy lets it reach the path is refused by the console's own peer check.
//!   Both attempts are recorded.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cordon_e2e::agent_cgroup::{RunningAgent, is_frozen, wait_frozen};
use cordon_e2e::nginx::{self, Nginx};
use cordon_e2e::operator::host_curl;
use cordon_e2e::world::show;
use cordon_e2e::{World, require_root_or_skip, wait_until};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"
"#;
const NOTICE: Duration = Duration::from_secs(15);
const USER: (&str, &str) = ("alice", "correct-horse-battery");

/// A directory the proxy's workers can traverse, holding the console socket.
fn socket_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cordon-console-sock-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn config(socket: &Path, group: &str, origin: &str) -> String {
    format!(
        "[console]\nsocket = \"{}\"\nsocket_group = \"{group}\"\npublic_origin = \"{origin}\"\nuser_header = \"{}\"\n",
        socket.display(),
        nginx::USER_HEADER
    )
}

fn cgroup_parent(w: &World) -> PathBuf {
    PathBuf::from(w.status().unwrap()["cgroup_parent"].as_str().unwrap())
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

fn body(response: &str) -> serde_json::Value {
    let b = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[test]
fn through_nginx_the_proxys_user_reads_the_live_view_and_changes_need_csrf_origin_and_host() {
    require_root_or_skip!();
    let dir = socket_dir();
    let socket = dir.path().join("console.sock");
    // nginx needs the socket's path before it starts, and the console its public origin
    // (nginx's port): the port is taken first, then both start.
    let port = Nginx::free_port().unwrap();
    let origin_url = format!("http://127.0.0.1:{port}");
    let w = World::start_configured(POLICY, &config(&socket, nginx::WORKER_GROUP, &origin_url))
        .unwrap();
    let status = w.status().unwrap();
    assert_eq!(
        status["console"].as_str(),
        Some(format!("unix:{}", socket.display()).as_str()),
        "{status}"
    );
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
    let www = nix::unistd::Group::from_name(nginx::WORKER_GROUP)
        .unwrap()
        .unwrap();
    assert_eq!(meta.gid(), www.gid.as_raw(), "socket group");

    let proxy = Nginx::start(&socket, &[USER], port).unwrap();
    let url = proxy.url();
    assert_eq!(url, origin_url);
    let auth = format!("{}:{}", USER.0, USER.1);
    let origin = format!("Origin: {url}");
    let victim = spawn(&w, "victim", &["/bin/sleep", "120"]);
    let victim_cg = victim.instance_cgroup(&cgroup_parent(&w)).unwrap();
    let kill_body = r#"{"target":"victim"}"#;

    // The proxy authenticates: without its credentials nothing reaches the console.
    let (code, resp) = host_curl(&[&format!("{url}/api/session")]);
    assert_eq!(code, 401, "{resp}");
    assert!(!resp.contains("csrf"), "{resp}");

    let (code, page) = host_curl(&["-u", &auth, &format!("{url}/")]);
    assert_eq!(code, 200, "{page}\n{}", proxy.output());
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'"),
        "{page}"
    );
    // A name the client claims is replaced by the one the proxy authenticated.
    let (code, resp) = host_curl(&[
        "-u",
        &auth,
        "-H",
        "X-Remote-User: mallory",
        &format!("{url}/api/session"),
    ]);
    assert_eq!(code, 200, "{resp}");
    let session = body(&resp);
    assert_eq!(session["who"], "console user alice", "{resp}");
    assert_eq!(session["login"], "proxy", "{resp}");
    let csrf = format!("X-Cordon-CSRF: {}", session["csrf"].as_str().unwrap());
    let (code, resp) = host_curl(&[
        "-u",
        &auth,
        "-H",
        &origin,
        "-d",
        "{}",
        &format!("{url}/api/login"),
    ]);
    assert_eq!(code, 400, "no login behind a proxy: {resp}");

    // The live audit view, streamed through the proxy: the backlog then `ready`.
    let out = Command::new("/usr/bin/curl")
        .args(["-sS", "-N", "--max-time", "3", "-u", &auth])
        .arg(format!("{url}/api/audit/stream?agent=victim"))
        .output()
        .unwrap();
    let feed = String::from_utf8_lossy(&out.stdout);
    assert!(feed.contains("event: ready"), "{}", show(&out));
    assert!(
        feed.lines()
            .any(|l| l.starts_with("data: ") && l.contains("\"agent\":\"victim\"")),
        "the victim's launch is not in the feed: {feed}"
    );

    let kill = format!("{url}/api/kill");
    for (args, want, why) in [
        (vec!["-H", &origin, "-d", kill_body], 403, "no CSRF token"),
        (vec!["-H", &csrf, "-d", kill_body], 403, "no Origin"),
        (
            vec![
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
            vec![
                "-H",
                &csrf,
                "-H",
                &origin,
                "-H",
                "Host: evil.test",
                "-d",
                kill_body,
            ],
            421,
            "another host name (DNS rebinding through the proxy)",
        ),
    ] {
        let mut all = vec!["-u", auth.as_str()];
        all.extend(args);
        all.push(&kill);
        let (code, resp) = host_curl(&all);
        assert_eq!(code, want, "{why}: {resp}");
        assert!(!is_frozen(&victim_cg).unwrap(), "killed despite {why}");
    }
    // A client straight on the socket (root may connect) that names no user: refused.
    let sock = socket.to_string_lossy().to_string();
    let (code, resp) = host_curl(&[
        "--unix-socket",
        &sock,
        "-H",
        &format!("Host: 127.0.0.1:{port}"),
        "-H",
        &csrf,
        "-H",
        &origin,
        "-d",
        kill_body,
        "http://console/api/kill",
    ]);
    assert_eq!(code, 401, "{resp}");
    assert!(!is_frozen(&victim_cg).unwrap(), "killed without a user");

    let (code, resp) = host_curl(&[
        "-u", &auth, "-H", &csrf, "-H", &origin, "-d", kill_body, &kill,
    ]);
    assert_eq!(code, 200, "{resp}");
    wait_frozen(&victim_cg, true, NOTICE).unwrap();
    let t = w.trail().unwrap();
    let kills: Vec<_> = t
        .records()
        .iter()
        .filter(|r| r.kind.as_str() == "agent.kill")
        .collect();
    assert_eq!(kills.len(), 1, "{t}");
    assert_eq!(
        kills[0].approver.as_deref(),
        Some("console user alice"),
        "{t}"
    );
}

#[test]
fn an_agent_cannot_use_the_console_socket_and_its_attempts_are_recorded() {
    require_root_or_skip!();
    let dir = socket_dir();
    let socket = dir.path().join("console.sock");
    // The socket is shared with the agents' own group (they run as nobody:nogroup here), so
    // its file mode lets them connect: what stops them is containment and the peer check.
    let w =
        World::start_configured(POLICY, &config(&socket, "nogroup", "http://127.0.0.1:9")).unwrap();
    let sock = socket.to_string_lossy().to_string();
    // What an agent would send: a session read and a kill, straight on the socket.
    let script = format!(
        "curl -sS --max-time 5 --unix-socket {sock} -H 'Host: 127.0.0.1:9' \
         -H 'X-Remote-User: alice' http://console/api/session; echo rc=$?"
    );

    // Contained as every agent is: the kernel refuses the connect.
    let out = w.run("intruder", &["/bin/sh", "-c", &script]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains("csrf"),
        "the agent read a session: {}",
        show(&out)
    );
    assert!(
        !text.contains("rc=0"),
        "the agent reached the console: {}",
        show(&out)
    );
    // The kernel's refusal is recorded from its event ring; it can land after the agent exits.
    let recorded = wait_until("the refused connect in the trail", NOTICE, || {
        w.trail()
            .is_ok_and(|t| t.has("unix.connect", &[("path", serde_json::json!(sock))]))
    });
    let t = w.trail().unwrap();
    assert!(recorded.is_ok(), "no record of the refused connect: {t}");
    let refusal = t.one("unix.connect", &[("path", serde_json::json!(sock))]);
    assert_eq!(refusal.chain.as_deref(), Some("intruder"), "{t}");
    assert_eq!(cordon_e2e::trail::rule(refusal), "contain:unix", "{t}");

    // A policy that lets an agent reach the path does not open the console: the console
    // refuses any peer inside an agent's cgroup.
    w.policies
        .write(
            "insider.toml",
            &format!(
                "agents = [\"insider\"]\ndefault = \"deny\"\n[contain]\nunix_sockets = [\"{sock}\"]\n"
            ),
        )
        .unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));
    let out = w.run("insider", &["/bin/sh", "-c", &script]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains("csrf"),
        "the agent read a session: {}",
        show(&out)
    );
    assert!(
        !text.contains("rc=0"),
        "the agent reached the console: {}",
        show(&out)
    );
    let t = w.trail().unwrap().of_chain("insider");
    assert!(
        !t.has("unix.connect", &[("path", serde_json::json!(sock))]),
        "containment refused it, so the console's own check was not tested: {t}"
    );
    let refused: Vec<_> = t
        .records()
        .iter()
        .filter(|r| r.action.as_deref() == Some("control.console"))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "no record of the console's refusal: {t}\n{}",
        show(&out)
    );
    assert_eq!(refused[0].decision.map(|d| d.as_str()), Some("deny"), "{t}");
}
