//! Chapter 1, after the world is up: what the policy says, and that the daemon answers.

use crate::demo::ctx::Ctx;

pub(crate) fn show(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.say("The policy (one TOML file per agent; default deny):");
    c.n.block(
        "researcher  github.*.read, GET on api.github.com: allow      everything else: deny\n\
         deployer    github.issue.create: allow    github.branch.delete: deny (with a reason)\n\
         \x20           github.pr.merge: approve when params.base == \"main\", else allow\n\
         support     stripe.charge.create: allow up to amount 1000, above: approve\n\
         \x20           [[limit]] at most 3 charges per minute\n\
         all three   tcp.connect and dns.query only for their API host, port 443",
    );
    let file = c.w.policies.path().join("deployer.toml");
    c.n.command_text(&format!("cat {}", file.display()));
    let text = std::fs::read_to_string(&file)?;
    let rules: String = text
        .lines()
        .skip_while(|l| !l.starts_with("[[rule]]"))
        .take(15)
        .collect::<Vec<_>>()
        .join("\n");
    c.n.block(&format!("{rules}\n..."));
    let out = c.cordon(&["status"])?;
    c.n.shows(
        "the daemon is up: its eBPF programs are attached to its cgroup tree, and every agent \
         started with `cordon run` lands inside it.",
    );
    c.n.check(
        "daemon started and answers `cordon status`",
        out.status.success(),
        "",
    );
    Ok(())
}
