//! The demo's policy: three agents, written into the daemon's policy directory before it
//! starts. Each file is complete on its own so the narration can print it.

use crate::PolicyDir;

/// Vault entry the deployer's GitHub credential is bound to.
pub const GITHUB_SECRET: &str = "demo-github";
/// Stripe charges per minute the support agent may create in the demo.
pub const CHARGES_PER_MINUTE: u32 = 3;

/// Network rules shared by every demo agent: resolve `hosts` and connect to them on `ports`.
fn network(id: &str, hosts: &str, ports: &str) -> String {
    format!(
        r#"
[[rule]]
id = "net-{id}"
action = "tcp.connect"
hosts = {hosts}
ports = {ports}
decision = "allow"

[[rule]]
id = "dns-{id}"
action = "dns.query"
hosts = {hosts}
decision = "allow"
"#
    )
}

pub fn researcher() -> String {
    let mut p = String::from(
        r#"# Reads GitHub, writes nothing: everything else falls to the default deny.
agents = ["researcher"]
default = "deny"

[[rule]]
id = "gh-read"
action = "github.*.read"
decision = "allow"

[[rule]]
id = "gh-http-get"
action = "http.request"
when = 'params.method == "GET" && params.host == "api.github.com"'
decision = "allow"
"#,
    );
    p.push_str(&network("github", r#"["api.github.com"]"#, "[443]"));
    p
}

pub fn deployer(vault_bound: bool) -> String {
    let mut p = String::from(
        r#"# Opens issues and merges PRs; merges to main need a human; never deletes branches.
agents = ["deployer"]
default = "deny"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "agents never delete branches"

[[rule]]
id = "merge-main-approval"
action = "github.pr.merge"
when = 'params.base == "main"'
decision = "approve"
approval_timeout = "2m"
reason = "merges to main need a human"

[[rule]]
id = "merge-feature"
action = "github.pr.merge"
decision = "allow"

[[rule]]
id = "issue-create"
action = "github.issue.create"
decision = "allow"

[[rule]]
id = "gh-read"
action = "github.*.read"
decision = "allow"
"#,
    );
    // 8443: GitHub's WebSocket (chapter 8).
    p.push_str(&network("github", r#"["api.github.com"]"#, "[443, 8443]"));
    if vault_bound {
        p.push_str(&format!("\n[credentials]\ngithub = \"{GITHUB_SECRET}\"\n"));
    }
    p
}

pub fn support() -> String {
    let mut p = format!(
        r#"# Charges customers: small charges alone, large ones with a human, {CHARGES_PER_MINUTE} a minute at most.
agents = ["support"]
default = "deny"

[[rule]]
id = "big-charge-approval"
action = "stripe.charge.create"
when = "params.amount > 1000"
decision = "approve"
approval_timeout = "2m"
reason = "charges above 1000 need a human"

[[rule]]
id = "charge"
action = "stripe.charge.create"
decision = "allow"

[[limit]]
id = "demo-charges"
action = "stripe.charge.create"
max = {CHARGES_PER_MINUTE}
per = "1m"
on_exceed = "deny"
"#
    );
    p.push_str(&network("stripe", r#"["api.stripe.com"]"#, "[443]"));
    p
}

/// Write the three agent files; the deployer's credential binding comes later (chapter 8).
pub fn write_all(dir: &PolicyDir) -> crate::Result<()> {
    dir.write("researcher.toml", &researcher())?;
    dir.write("deployer.toml", &deployer(false))?;
    dir.write("support.toml", &support())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployer_binds_the_vault_entry_only_when_asked() {
        assert!(deployer(true).contains("[credentials]\ngithub = \"demo-github\""));
        assert!(!deployer(false).contains("[credentials]"));
    }

    #[test]
    fn support_limit_uses_the_demo_rate() {
        assert!(support().contains(&format!("max = {CHARGES_PER_MINUTE}\nper = \"1m\"")));
    }
}
