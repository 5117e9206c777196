//! Chapter 6: the kill switch. A looping agent is frozen with `cordon kill`, its requests stop
//! reaching the upstream, `cordon resume` lets it continue, and `cordon terminate` ends it.

use std::time::Duration;

use crate::demo::agent::Background;
use crate::demo::ctx::Ctx;
use crate::process::wait_until;

/// The loop is bounded so nothing runs on if the demo dies without its guards.
const LOOP: &str = "i=0; while [ $i -lt 300 ]; do \
    curl -s -o /dev/null --max-time 3 https://api.github.com/repos/acme/app/commits; \
    i=$((i+1)); sleep 0.1; done";
const LOOP_PATH: &str = "/repos/acme/app/commits";
const T: Duration = Duration::from_secs(15);

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "6. Kill switch",
        "researcher runs a loop of GitHub reads, as a runaway agent would. The operator \
         freezes it, looks, and lets it go on.",
    );
    let cmd = c.w.daemon.agent("researcher", &["sh", "-c", LOOP]);
    c.n.command(&cmd);
    c.n.say("(started in the background)");
    let mut agent = Background::spawn(cmd)?;
    let count = || {
        c.w.github
            .received()
            .iter()
            .filter(|q| q.path == LOOP_PATH)
            .count()
    };
    let running = wait_until("the loop's requests", T, || count() >= 3).is_ok();
    c.n.say(&format!(
        "GitHub has seen {} of its requests so far.",
        count()
    ));
    if !c.n.check("looping agent is running", running, "") {
        return Ok(());
    }

    let out = c.cordon(&["kill", "researcher", "--reason", "demo: runaway loop"])?;
    c.n.check(
        "`cordon kill researcher` succeeds",
        out.status.success(),
        "",
    );
    let out = c.cordon(&["ps"])?;
    let ps = String::from_utf8_lossy(&out.stdout).into_owned();
    let killed = ps
        .lines()
        .any(|l| l.starts_with("researcher") && l.contains("killed"));
    c.n.check("`cordon ps` shows researcher killed", killed, "");
    std::thread::sleep(Duration::from_millis(300));
    let frozen_at = count();
    std::thread::sleep(Duration::from_secs(2));
    let after = count();
    c.n.say(&format!(
        "requests seen by GitHub: {frozen_at} right after the kill, {after} two seconds later."
    ));
    c.n.shows("the agent's processes are frozen and its connections cut: the count stops growing.");
    c.n.check(
        "no request reaches GitHub while killed",
        after == frozen_at && agent.running(),
        &format!("{frozen_at} -> {after}"),
    );

    c.n.say(
        "The daemon is restarted while researcher is killed, as an upgrade would: the demo \
         stops its daemon and starts it again on the same state dir.",
    );
    let restarted = c.w.daemon.restart();
    c.n.check(
        "the daemon restarts",
        restarted.is_ok(),
        &restarted
            .as_ref()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default(),
    );
    let out = c.cordon(&["ps"])?;
    let still = String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("researcher") && l.contains("killed"));
    std::thread::sleep(Duration::from_secs(1));
    let after_restart = count();
    c.n.shows(
        "the kill is kept in the state dir's kills.json and re-applied at start: a restart never \
         un-kills an agent.",
    );
    c.n.check(
        "researcher is still killed after the restart, and nothing reached GitHub",
        still && after_restart == after,
        &format!("{after} -> {after_restart}"),
    );

    let out = c.cordon(&["resume", "researcher"])?;
    c.n.check(
        "`cordon resume researcher` succeeds",
        out.status.success(),
        "",
    );
    let resumed = wait_until("requests after resume", T, || count() > after).is_ok();
    std::thread::sleep(Duration::from_millis(500));
    c.n.say(&format!("requests seen by GitHub now: {}.", count()));
    c.n.check("the loop continues after resume", resumed, "");

    let out = c.cordon(&["terminate", "researcher"])?;
    let ended = agent.wait(Duration::from_secs(10))?.is_some();
    c.n.shows("terminate kills every process of the agent (they are gone, not frozen).");
    c.n.check(
        "`cordon terminate` ends the loop",
        out.status.success() && ended,
        "",
    );
    agent.stop();
    Ok(())
}
