//! Chapter 14: learn mode. A new agent runs with `mode = "learn"`: what its policy would refuse
//! goes ahead and the trail says so; `cordon policy suggest` turns that trail into a policy;
//! the operator applies it beside the agent's file and the same agent runs enforced.

use crate::demo::agent::Curl;
use crate::demo::ctx::Ctx;

const LEARNER: &str = r#"# A new agent: learn what it does before enforcing. Its deny rule is kept for later.
agents = ["learner"]
mode = "learn"
default = "deny"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "agents never delete branches"
"#;

const READ: &str = "https://api.github.com/repos/acme/app";
const ISSUE: &str = "https://api.github.com/repos/acme/app/issues";
const DELETE: &str = "https://api.github.com/repos/acme/app/git/refs/heads/old-branch";
const OTHER_REPO: &str = "https://api.github.com/repos/acme/payroll";

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "14. Learn mode",
        "learner is new: its file says mode = \"learn\". Every action its policy would refuse \
         still goes ahead and is recorded with the rule that would have fired; kill switches, \
         containment and credential bindings stay enforced.",
    );
    c.w.policies.write("learner.toml", LEARNER)?;
    c.n.block(LEARNER);
    c.cordon(&["policy", "reload"])?;

    let before = c.w.github.count();
    let read = c.agent_curl("learner", &Curl::get(READ))?;
    let issue = c.agent_curl(
        "learner",
        &Curl::new("POST", ISSUE).json(r#"{"title": "found while learning"}"#),
    )?;
    let delete = c.agent_curl("learner", &Curl::new("DELETE", DELETE))?;
    let reached = c.w.github.count() - before;
    c.n.shows("all three reached GitHub, although the policy denies every one of them.");
    c.n.check(
        "a learning agent's denied actions reach the upstream",
        read.status == Some(200) && issue.status == Some(201) && reached == 3,
        &format!(
            "{}, {}, {}; GitHub saw {reached}",
            read.summary(),
            issue.summary(),
            delete.summary()
        ),
    );
    let out = c.cordon(&["audit", "tail", "--agent", "learner", "-n", "10"])?;
    let tail = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.shows("each decision is ALLOW with would=deny and the rule that would have fired.");
    c.n.check(
        "the trail records would=deny with the rule",
        tail.contains("rule=no-branch-delete would=deny")
            && tail.contains("rule=default:learner.toml would=deny"),
        "",
    );

    let policies = c.w.policies.path().display().to_string();
    let out = c.cordon(&[
        "policy",
        "suggest",
        "--agent",
        "learner",
        "--policies",
        &policies,
    ])?;
    let proposal = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.shows(
        "one rule per action, as narrow as the evidence: the repo pinned, each with its count, \
         first and last seen, and the NEW ACCESS it grants against the policy in force.",
    );
    c.n.check(
        "`cordon policy suggest` proposes rules with evidence and new access",
        out.status.success()
            && proposal.contains("action = \"github.issue.create\"")
            && proposal.contains("# NEW ACCESS: today denied by rule `default:learner.toml`"),
        "",
    );
    c.w.policies.write("learner-learned.toml", &proposal)?;
    let mut check = std::process::Command::new(&c.cordon);
    check.args(["policy", "check", &policies]);
    let out = c.run_shown(&mut check, std::time::Duration::from_secs(15))?;
    c.n.check(
        "the applied proposal passes `cordon policy check`",
        out.status.success(),
        "",
    );
    c.cordon(&["policy", "reload"])?;

    c.n.say("the same agent again, now enforced (learner-learned.toml has no mode):");
    let read = c.agent_curl("learner", &Curl::get(READ))?;
    let delete = c.agent_curl("learner", &Curl::new("DELETE", DELETE))?;
    let other = c.agent_curl("learner", &Curl::get(OTHER_REPO))?;
    c.n.shows(
        "the learned read is allowed; the delete meets the deny rule, which beats any allow; \
         a repo it never touched falls to the default deny.",
    );
    c.n.check(
        "enforced after applying: learned read allowed, delete and an unseen repo refused",
        read.status == Some(200)
            && delete.status == Some(403)
            && delete.field("rule") == "no-branch-delete"
            && other.status == Some(403),
        &format!(
            "{}, {}, {}",
            read.summary(),
            delete.summary(),
            other.summary()
        ),
    );
    Ok(())
}
