//! Chapter 15: the web console. The operator logs in with a token from `cordon console
//! token` and answers a held merge through the console's API (the page's buttons make the
//! same calls; `tests/tests/console_e2e.rs` clicks them in Chromium, and docs/console.md
//! shows the views). A change without the session's CSRF token is refused, and an agent
//! cannot reach the console at all.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::demo::agent::{Background, Curl, HttpResult};
use crate::demo::ctx::Ctx;

const MAIN_MERGE: &str = "/repos/acme/app/pulls/7/merge";
const MERGE_WAIT: Duration = Duration::from_secs(20);
const CALL: Duration = Duration::from_secs(20);

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "15. Web console",
        "The daemon runs with `--console 127.0.0.1:0`. Its page is served from the binary; \
         logging in takes a token only root can make, and every change carries a CSRF token.",
    );
    let status = c.w.daemon.cordon(&["status"])?;
    let url = serde_json::from_slice::<serde_json::Value>(&status.stdout)
        .ok()
        .and_then(|v| v["console"].as_str().map(|a| format!("http://{a}")));
    let Some(url) = url else {
        c.n.check(
            "the console is on",
            false,
            "`cordon status` names no console",
        );
        return Ok(());
    };
    c.n.say(&format!("the console listens on {url}"));
    let out = c.cordon(&["console", "token"])?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    c.n.check(
        "root makes a login token",
        out.status.success(),
        "only its hash is kept",
    );

    let jar = tempfile::tempdir().context("cookie jar dir")?;
    let jar = jar.path().join("cookies");
    let jar = jar.to_string_lossy().to_string();
    let origin = format!("Origin: {url}");
    let login = format!(r#"{{"token":"{token}"}}"#);
    let r = host_curl(
        c,
        &[
            "-c",
            &jar,
            "-H",
            &origin,
            "-H",
            "content-type: application/json",
            "-d",
            &login,
        ],
        &format!("{url}/api/login"),
    )?;
    let csrf = r.field("csrf");
    c.n.check(
        "login opens a session",
        r.status == Some(200) && !csrf.is_empty(),
        &r.summary(),
    );

    let curl = Curl::new("PUT", &format!("https://api.github.com{MAIN_MERGE}"))
        .json(r#"{"merge_method": "squash"}"#)
        .max_time(60);
    let argv = curl.argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let cmd = c.w.daemon.agent("deployer", &argv);
    c.n.command(&cmd);
    c.n.say("(in the background: the merge to main waits for a human, as in chapter 4)");
    let mut merge = Background::spawn(cmd)?;
    let r = wait_pending(c, &url, &jar)?;
    let Some(id) = r else {
        c.n.check(
            "the console lists the held merge",
            false,
            "no approval appeared",
        );
        return Ok(());
    };
    c.n.check(
        "the console lists the held merge",
        true,
        &format!("approval {id}"),
    );

    let approve = format!(r#"{{"id":"{id}","answer":"once"}}"#);
    let r = host_curl(
        c,
        &[
            "-b",
            &jar,
            "-H",
            &origin,
            "-H",
            "content-type: application/json",
            "-d",
            &approve,
        ],
        &format!("{url}/api/approve"),
    )?;
    c.n.check(
        "without the CSRF token the approval is refused",
        r.status == Some(403) && merge.running(),
        &r.summary(),
    );
    let csrf_header = format!("X-Cordon-CSRF: {csrf}");
    let r = host_curl(
        c,
        &[
            "-b",
            &jar,
            "-H",
            &origin,
            "-H",
            &csrf_header,
            "-H",
            "content-type: application/json",
            "-d",
            &approve,
        ],
        &format!("{url}/api/approve"),
    )?;
    c.n.check(
        "the console approves it once",
        r.status == Some(200),
        &r.summary(),
    );
    let done = merge.wait(MERGE_WAIT)?;
    let merged = done
        .map(HttpResult::parse)
        .is_some_and(|r| r.status == Some(200));
    c.n.check("the approved merge completes", merged, "");

    c.n.say("an agent, even one holding the token, cannot reach the console:");
    let r = c.agent_curl(
        "deployer",
        &Curl::new("POST", &format!("{url}/api/login"))
            .header(&origin)
            .json(&login),
    )?;
    c.n.check(
        "an agent's connection to the console is refused",
        r.status.is_none(),
        &r.summary(),
    );
    c.n.shows("the proxy refused it as a connection to Cordon's own listeners, and recorded it.");
    Ok(())
}

/// `curl` from the operator's shell (outside any agent), shown and run.
fn host_curl(c: &Ctx, args: &[&str], url: &str) -> anyhow::Result<HttpResult> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "15"])
        .args(args)
        .args(["-w", "\\n[HTTP %{http_code}]\\n", url]);
    Ok(HttpResult::parse(c.run_shown(&mut cmd, CALL)?))
}

/// Polls the console's approvals (quietly) for the held merge; its id.
fn wait_pending(c: &Ctx, url: &str, jar: &str) -> anyhow::Result<Option<String>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let out = crate::process::run_with_timeout(
            Command::new("curl").args(["-sS", "-b", jar, &format!("{url}/api/approvals")]),
            CALL,
        )?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(id) = list.as_array().and_then(|a| {
            a.iter()
                .find(|p| p["action"] == "github.pr.merge")
                .and_then(|p| p["id"].as_str().map(str::to_owned))
        }) {
            c.n.command_text(&format!("curl -b {jar} {url}/api/approvals"));
            c.n.output(&out);
            return Ok(Some(id));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(None)
}
