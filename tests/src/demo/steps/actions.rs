//! Chapter 3: requests become named actions with parameters, and policy decides each one.
//! Allowed actions reach the upstream; denied ones get a readable 403 from Cordon and never
//! leave the host.

use crate::demo::agent::{Curl, HttpResult};
use crate::demo::ctx::Ctx;

const BRANCH_URL: &str = "https://api.github.com/repos/acme/app/git/refs/heads/release-1.0";

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "3. Actions",
        "Cordon reads each HTTP request through a connector (policies/connectors/github.toml) \
         into an action such as github.issue.create {owner, repo, title} and decides it.",
    );
    connector_match(c)?;
    let before = c.w.github.count();
    let r = c.agent_curl(
        "deployer",
        &Curl::new("POST", "https://api.github.com/repos/acme/app/issues")
            .json(r#"{"title": "Flaky test in CI"}"#),
    )?;
    let seen = c.w.github.received()[before..].iter().any(|q| {
        q.method == "POST" && q.path == "/repos/acme/app/issues" && q.body_text().contains("Flaky")
    });
    c.n.shows("github.issue.create is allowed for deployer: GitHub created issue 42.");
    c.n.check(
        "deployer creates an issue (allowed, upstream saw it)",
        r.status == Some(201) && seen,
        &format!("{}, upstream saw it: {seen}", r.summary()),
    );

    let before = c.w.github.count();
    let r = c.agent_curl("deployer", &Curl::new("DELETE", BRANCH_URL))?;
    let leaked = c.w.github.received()[before..]
        .iter()
        .any(|q| q.method == "DELETE");
    show_refusal(c, &r);
    c.n.shows(
        "github.branch.delete {branch: release-1.0} matched the deny rule: the agent gets a \
         JSON 403 naming the rule and the reason; GitHub never saw the DELETE.",
    );
    c.n.check(
        "deployer's branch delete is refused with rule and reason",
        r.status == Some(403)
            && r.field("rule") == "no-branch-delete"
            && r.field("reason").contains("never delete")
            && !leaked,
        &format!(
            "{}, rule {:?}, upstream saw it: {leaked}",
            r.summary(),
            r.field("rule")
        ),
    );

    let before = c.w.github.count();
    let r = c.agent_curl(
        "researcher",
        &Curl::new("POST", "https://api.github.com/repos/acme/app/issues")
            .json(r#"{"title": "I only read"}"#),
    )?;
    let leaked = c.w.github.count() > before;
    c.n.shows("the researcher's policy has no rule for writes, so its default (deny) decides.");
    c.n.check(
        "researcher's write is refused by its default deny",
        r.status == Some(403) && r.field("rule").starts_with("default:") && !leaked,
        &format!("{}, rule {:?}", r.summary(), r.field("rule")),
    );
    Ok(())
}

/// Pretty-print Cordon's JSON refusal, which curl showed on one line.
fn show_refusal(c: &Ctx, r: &HttpResult) {
    if let Some(v) = r.json().filter(|_| r.status == Some(403)) {
        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
        c.n.say("the same answer, indented:");
        c.n.block(&pretty);
    }
}

/// `cordon connectors match` is optional: shown when the binary has it.
fn connector_match(c: &mut Ctx) -> anyhow::Result<()> {
    let has = crate::process::run_with_timeout(
        std::process::Command::new(&c.cordon).args(["connectors", "match", "--help"]),
        std::time::Duration::from_secs(10),
    )
    .is_ok_and(|o| o.status.success());
    if !has {
        c.n.skip(
            "`cordon connectors match` explains a request",
            "this cordon has no `connectors match` subcommand",
        );
        return Ok(());
    }
    let policies = c.w.policies.path();
    let mut cmd = std::process::Command::new(&c.cordon);
    cmd.args(["connectors", "match", "--policies"])
        .arg(&policies)
        .args(["DELETE", BRANCH_URL]);
    let out = c.run_shown(&mut cmd, std::time::Duration::from_secs(15))?;
    c.n.shows("how Cordon names the request before any policy is applied.");
    let text = String::from_utf8_lossy(&out.stdout);
    c.n.check(
        "`cordon connectors match` names github.branch.delete",
        out.status.success() && text.contains("github.branch.delete"),
        "",
    );
    Ok(())
}
