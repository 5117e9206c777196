//! Chapter 15: the web console. The operator logs in with a token from `cordon console
//! token` and answers a held merge through the console's API (the page's buttons make the
//! same calls; `tests/tests/console_e2e.rs` clicks them in Chromium, and docs/console.md
//! shows the views). A change without the session's CSRF token is refused. The answer is
//! "3 uses": the held merge and two more go through, and the fourth is held again. An agent
//! cannot reach the console at all.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::demo::agent::{Background, Curl, HttpResult};
use crate::demo::ctx::Ctx;

const MAIN_MERGE: &str = "/repos/acme/app/pulls/7/merge";
/// Uses the operator grants: the held merge counts as the first.
const USES: usize = 3;
const MERGE_WAIT: Duration = Duration::from_secs(20);
const CALL: Duration = Duration::from_secs(20);

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "15. Web console",
        "The daemon runs with `--console 127.0.0.1:0`. Its page is served from the binary; \
         logging in takes a token only root can make, and every change carries a CSRF token. \
         A held merge is answered \"3 uses\": it and two more go through, the fourth is held.",
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

    let cmd =
        c.w.daemon
            .agent("deployer", &str_argv(&merge_curl(60).argv()));
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

    let before = merges(c);
    let approve = format!(r#"{{"id":"{id}","answer":"uses","n":{USES}}}"#);
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
    let grant = r
        .json()
        .and_then(|v| v["standing"]["grant"]["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    c.n.check(
        "the console answers it with 3 uses",
        r.status == Some(200) && !grant.is_empty(),
        &format!("{}, grant {grant}", r.summary()),
    );
    let done = merge.wait(MERGE_WAIT)?;
    let merged = done
        .map(HttpResult::parse)
        .is_some_and(|r| r.status == Some(200));
    c.n.check("the approved merge completes (use 1 of 3)", merged, "");

    c.n.say("the same merge twice more: the grant covers them, nobody is asked");
    let mut statuses = Vec::new();
    for _ in 1..USES {
        let r = c.agent_curl("deployer", &merge_curl(15))?;
        statuses.push(r.status);
    }
    let after_grant = merges(c) - before;
    c.n.check(
        "uses 2 and 3 go straight through",
        statuses.iter().all(|s| *s == Some(200)) && after_grant == USES,
        &format!("statuses {statuses:?}; GitHub merged {after_grant} times"),
    );
    let out = c.cordon(&["grants"])?;
    c.n.check(
        "the used-up grant is no longer listed",
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains(&grant),
        &format!("grant {grant}"),
    );

    let cmd =
        c.w.daemon
            .agent("deployer", &str_argv(&merge_curl(60).argv()));
    c.n.command(&cmd);
    c.n.say("(the fourth, in the background)");
    let mut fourth = Background::spawn(cmd)?;
    let held = super::approval::wait_for_pending(c, "github.pr.merge")?;
    let listing = c.cordon(&["approvals"])?;
    let listed = String::from_utf8_lossy(&listing.stdout).into_owned();
    let Some(held) = held else {
        c.n.check(
            "the fourth merge is held again",
            false,
            "no pending github.pr.merge appeared in `cordon approvals`",
        );
        fourth.stop();
        return Ok(());
    };
    c.n.check(
        "the fourth merge is held again",
        fourth.running() && merges(c) - before == USES && listed.contains(&held),
        &format!("approval {held}"),
    );
    c.cordon(&["deny", &held])?;
    let refused = fourth
        .wait(MERGE_WAIT)?
        .map(HttpResult::parse)
        .is_some_and(|r| r.status == Some(403));
    c.n.check(
        "denied, the fourth never reaches GitHub",
        refused && merges(c) - before == USES,
        "",
    );

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

fn merge_curl(max_time: u32) -> Curl {
    Curl::new("PUT", &format!("https://api.github.com{MAIN_MERGE}"))
        .json(r#"{"merge_method": "squash"}"#)
        .max_time(max_time)
}

fn str_argv(argv: &[String]) -> Vec<&str> {
    argv.iter().map(String::as_str).collect()
}

/// Merges of PR 7 GitHub has seen.
fn merges(c: &Ctx) -> usize {
    c.w.github
        .received()
        .iter()
        .filter(|q| q.method == "PUT" && q.path == MAIN_MERGE)
        .count()
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
