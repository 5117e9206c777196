//! Chapter 4: a merge to main waits for a human. The agent's request is held open while an
//! operator looks at it with `cordon approvals` and lets it through with `cordon approve`;
//! a feature-branch merge goes straight through.

use std::time::Duration;

use crate::demo::agent::{Background, Curl, HttpResult};
use crate::demo::ctx::Ctx;
use crate::process::{run_with_timeout, wait_until};

const MAIN_MERGE: &str = "/repos/acme/app/pulls/7/merge";
const FEATURE_MERGE: &str = "/repos/acme/app/pulls/8/merge";
const PENDING_WAIT: Duration = Duration::from_secs(15);
const MERGE_WAIT: Duration = Duration::from_secs(20);

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "4. Human approval",
        "github.pr.merge carries `base`, which Cordon fetches from GitHub (GET /pulls/N) before \
         deciding. deployer's policy: merges into main need a human, other merges do not.",
    );
    let curl = Curl::new("PUT", &format!("https://api.github.com{MAIN_MERGE}"))
        .json(r#"{"merge_method": "squash"}"#)
        .max_time(60);
    let argv = curl.argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let cmd = c.w.daemon.agent("deployer", &argv);
    c.n.command(&cmd);
    c.n.say("(started in the background: the agent's request now waits inside Cordon)");
    let mut merge = Background::spawn(cmd)?;

    let id = wait_for_pending(c, "github.pr.merge")?;
    let out = c.cordon(&["approvals"])?;
    let early = merged(c, MAIN_MERGE);
    c.n.shows("the merge is pending with its parameters (base: main); GitHub has not seen it.");
    let Some(id) = id.filter(|_| out.status.success()) else {
        c.n.check(
            "merge to main waits for approval",
            false,
            "no pending github.pr.merge appeared in `cordon approvals`",
        );
        return Ok(());
    };
    c.n.check(
        "merge to main waits for approval",
        merge.running() && !early,
        &format!("approval {id}"),
    );

    let out = c.cordon(&["approve", &id])?;
    c.n.check("operator approves it", out.status.success(), "");
    let done = merge.wait(MERGE_WAIT)?;
    let Some(done) = done else {
        c.n.check(
            "approved merge completes",
            false,
            "the agent's request did not finish within 20s",
        );
        return Ok(());
    };
    let r = HttpResult::parse(done);
    c.n.say("the agent's curl, which was waiting all along, now prints:");
    c.n.output(&r.output);
    c.n.check(
        "approved merge completes",
        r.status == Some(200) && merged(c, MAIN_MERGE),
        &r.summary(),
    );

    let r = c.agent_curl(
        "deployer",
        &Curl::new("PUT", &format!("https://api.github.com{FEATURE_MERGE}"))
            .json(r#"{"merge_method": "squash"}"#),
    )?;
    let enriched =
        c.w.github
            .received()
            .iter()
            .any(|q| q.method == "GET" && q.path == "/repos/acme/app/pulls/8");
    c.n.shows("PR 8 merges into feature/login (Cordon asked GitHub), so the allow rule decides: no human needed.");
    c.n.check(
        "feature-branch merge goes straight through",
        r.status == Some(200) && merged(c, FEATURE_MERGE) && enriched,
        &format!("{}, base looked up: {enriched}", r.summary()),
    );
    Ok(())
}

fn merged(c: &Ctx, path: &str) -> bool {
    c.w.github
        .received()
        .iter()
        .any(|q| q.method == "PUT" && q.path == path)
}

/// Poll `cordon approvals` (quietly) until a row for `action` appears; its ID is column one.
pub(super) fn wait_for_pending(c: &Ctx, action: &str) -> anyhow::Result<Option<String>> {
    let mut id = None;
    let _ = wait_until("a pending approval", PENDING_WAIT, || {
        let Ok(out) = run_with_timeout(
            &mut c.w.daemon.cordon_command(&["approvals"]),
            Duration::from_secs(10),
        ) else {
            return false;
        };
        id = pending_id(&String::from_utf8_lossy(&out.stdout), action);
        if id.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
        id.is_some()
    });
    Ok(id)
}

/// The ID of the first row of `cordon approvals` output whose action is `action`.
pub(super) fn pending_id(listing: &str, action: &str) -> Option<String> {
    listing
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(2) == Some(action))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_id_reads_the_row_of_the_action() {
        let listing = "ID         AGENT  ACTION  AGE  PARAMS\n\
                       a1b2c3     support stripe.charge.create 3s {}\n\
                       d4e5f6     deployer github.pr.merge 1s {\"base\":\"main\"}\n";
        assert_eq!(
            pending_id(listing, "github.pr.merge").as_deref(),
            Some("d4e5f6")
        );
        assert_eq!(pending_id(listing, "github.branch.delete"), None);
    }
}
