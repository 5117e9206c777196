//! Chapter 16: `cordon doctor`. The checks an operator runs after every
//! install and kernel upgrade, against the demo's daemon; then the attack
//! battery, every technique of which must be held.

use std::process::Command;
use std::time::Duration;

use crate::demo::ctx::Ctx;

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "16. Doctor",
        "Does enforcement hold on this kernel? `cordon doctor` checks the host, the daemon and \
         the policies, naming a fix for each failure; `--attack` tries to get around Cordon from \
         a throwaway root agent, and each attempt is judged by what reached its sink.",
    );
    let policies = c.w.policies.path().display().to_string();
    let out = c.cordon(&["doctor", "--policies", &policies])?;
    c.n.check(
        "the host, the daemon and the policies pass",
        out.status.success(),
        "",
    );
    let mut cmd = Command::new(&c.cordon);
    cmd.args(["doctor", "--attack"]).current_dir("/");
    let out = c.run_shown(&mut cmd, Duration::from_secs(240))?;
    let text = String::from_utf8_lossy(&out.stdout);
    c.n.shows(
        "each technique ran first without Cordon (it got through, so the probe is real), then \
         as a root agent under a throwaway daemon: held.",
    );
    c.n.check(
        "every technique of the battery was held",
        out.status.success() && text.contains("held: read a planted secret file"),
        "",
    );
    Ok(())
}
