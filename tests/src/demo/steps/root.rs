//! Chapter 10: root agents. An agent run with `--allow-root` believes it is root, but its uid 0
//! is `nobody` on the host. It tries to leave its cgroup and to rewrite its own policy; both
//! fail, the policy is unchanged, and the trail shows the refusals.

use std::process::Command;
use std::time::Duration;

use crate::demo::ctx::Ctx;

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "10. Root agents",
        "An agent run as root gets no real root: a user namespace maps its uid 0 to nobody, its \
         cgroup view is its own instance, read-only, and Landlock holds it like any agent.",
    );
    let policy = c.w.policies.path().join("deployer.toml");
    let before = std::fs::read(&policy)?;
    let script = format!(
        "id -u; \
         echo $$ > /sys/fs/cgroup/unified/cgroup.procs || echo 'leave: refused'; \
         mkdir -p $TMPDIR/cg; mount -t cgroup2 none $TMPDIR/cg 2>/dev/null || echo 'fresh cgroup view: refused'; \
         sed -i 's/decision = \"approve\"/decision = \"allow\"/' {p} 2>/dev/null || echo 'policy edit: refused'",
        p = policy.display()
    );
    let mut cmd = Command::new(&c.cordon);
    cmd.args(["run", "--agent", "deployer", "--state-dir"])
        .arg(c.w.state_dir())
        .args(["--allow-root", "--", "sh", "-c", &script])
        .current_dir("/")
        .env_remove("SUDO_UID");
    let out = c.run_shown(&mut cmd, Duration::from_secs(60))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.check(
        "the agent believes it is root",
        text.lines().next() == Some("0"),
        "",
    );
    c.n.check(
        "it could not leave its cgroup, nor mount a fresh cgroup view",
        text.contains("leave: refused") && text.contains("fresh cgroup view: refused"),
        "",
    );
    c.n.check(
        "its policy edit was refused and the file is unchanged",
        text.contains("policy edit: refused") && std::fs::read(&policy)? == before,
        "",
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = c.cordon(&["audit", "tail", "--agent", "deployer", "-n", "4"])?;
    let tail = String::from_utf8_lossy(&out.stdout);
    c.n.shows(
        "the launch says how root was contained (root=mapped), and the trail holds the mount \
         attempt and the policy edit (sed's temporary file in the policy directory) as refused.",
    );
    c.n.check(
        "the trail records both refusals",
        tail.contains("contain:mount") && tail.contains("contain:write"),
        "",
    );
    Ok(())
}
