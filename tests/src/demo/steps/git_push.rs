//! Chapter 12: a git push is decided ref by ref. The agent runs the real `git` against a git
//! server on the fake internet: a push to a feature branch lands; a push to main is refused as
//! a whole in git's own report format, so git itself prints the policy's reason.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;

use crate::demo::ctx::Ctx;
use crate::git_http::GitServer;
use crate::world::world_writable_dir;

const HOST: &str = "git.acme.test";
const REPO: &str = "acme/app";

const POLICY: &str = r#"# Pushes to any branch but main; fetches freely.
agents = ["coder"]
default = "deny"

[[rule]]
id = "git-read"
action = "git.fetch"
decision = "allow"

[[rule]]
id = "git-push-advertise"
action = "git.push.advertise"
decision = "allow"

[[rule]]
id = "git-push"
action = "git.push"
decision = "allow"

[[rule]]
id = "no-push-main"
action = "git.push"
when = 'params.branch == "main"'
decision = "deny"
reason = "never push to main; open a pull request"

[[rule]]
id = "dns-git"
action = "dns.query"
hosts = ["git.acme.test"]
decision = "allow"
"#;

const GIT_ENV: &[(&str, &str)] = &[
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_AUTHOR_NAME", "Coder"),
    ("GIT_AUTHOR_EMAIL", "coder@acme.test"),
    ("GIT_COMMITTER_NAME", "Coder"),
    ("GIT_COMMITTER_EMAIL", "coder@acme.test"),
];

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "12. git push by ref",
        "A push carries its ref updates as pkt-lines ahead of the pack. Cordon reads them into \
         one git.push {repo, ref, branch, old, new, create, delete, force} per ref; force is \
         true unless the pushed commits prove a fast-forward.",
    );
    let ip = c.w.ns.v4_at(3);
    c.w.dns.set(HOST, &[IpAddr::V4(ip)]);
    let git = GitServer::start_on(&c.w.ns, &c.w.ca, &[HOST], &[(IpAddr::V4(ip), 443)])
        .context("start the git server")?;
    git.create_repo(REPO)?;
    c.w.policies.write("coder.toml", POLICY)?;
    c.n.say("$POLICIES/coder.toml:");
    c.n.block(POLICY);
    let reload = c.cordon(&["policy", "reload"])?;
    c.n.check("policy reloaded", reload.status.success(), "");
    let work = world_writable_dir()?;

    let sh = |c: &Ctx, script: &str| {
        let mut cmd = c.w.daemon.agent("coder", &["/bin/sh", "-c", script]);
        cmd.current_dir(work.path());
        for (k, v) in GIT_ENV {
            cmd.env(k, v);
        }
        c.run_shown(&mut cmd, Duration::from_secs(60))
    };
    let feature = sh(
        c,
        "git clone -q https://git.acme.test/acme/app.git && cd app && git checkout -q -b fix/typo \
         && echo fixed > typo.txt && git add typo.txt && git commit -q -m 'fix typo' \
         && git push origin fix/typo",
    )?;
    let landed = git.rev(REPO, "refs/heads/fix/typo")?.is_some();
    c.n.shows("git.push {branch: fix/typo, create: true} is allowed: the branch is on the server.");
    c.n.check(
        "push to a feature branch is allowed",
        feature.status.success() && landed,
        "",
    );

    let main_before = git.rev(REPO, "refs/heads/main")?;
    let to_main = sh(c, "cd app && git push origin fix/typo:main")?;
    let err = String::from_utf8_lossy(&to_main.stderr).into_owned();
    let moved = git.rev(REPO, "refs/heads/main")? != main_before;
    c.n.shows(
        "Cordon refused the push in git's own report-status format, so git printed the \
         rejection with the policy's reason; main did not move.",
    );
    c.n.check(
        "push to main is refused and git prints the reason",
        !to_main.status.success()
            && err.contains("[remote rejected]")
            && err.contains("denied by policy: never push to main")
            && !moved,
        &format!("main moved: {moved}"),
    );
    Ok(())
}
