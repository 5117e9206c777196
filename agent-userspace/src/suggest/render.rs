//! The proposal as a policy file: a header with the evidence and the diff
//! summary, then one commented `[[rule]]` per group and a `[contain]` table.
//! Every value goes through the TOML serializer, so a param or name cannot
//! break out of its string.

use std::fmt::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};

use super::contain::{ContainProposal, Seen};
use super::diff::Today;
use super::scope::Scope;

/// One rule to write.
pub struct RuleText<'a> {
    pub id: String,
    pub action: &'a str,
    pub scope: Scope,
    pub count: usize,
    pub learned: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// `None` when there is no policy in force to compare with.
    pub today: Option<Today>,
}

pub struct Header<'a> {
    pub agent: &'a str,
    pub actions: usize,
    pub learned: usize,
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The version of the policy compared with.
    pub compared: Option<&'a str>,
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn times(n: usize) -> String {
    if n == 1 {
        "once".into()
    } else {
        format!("{n} times")
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub fn header(h: &Header<'_>, rules: &[RuleText<'_>], out: &mut String) -> fmt::Result {
    let new = rules
        .iter()
        .filter(|r| r.today.as_ref().is_none_or(Today::is_new_access))
        .count();
    writeln!(
        out,
        "# Proposed policy for agent {}, by `cordon policy suggest`.",
        toml_str(h.agent)
    )?;
    match h.span {
        Some((first, last)) => {
            writeln!(
                out,
                "# Evidence: {} actions that went ahead, {} to {} ({} only because of learn mode).",
                h.actions,
                ts(&first),
                ts(&last),
                h.learned
            )?;
        }
        None => out.push_str("# Evidence: no action of this agent went ahead.\n"),
    }
    match h.compared {
        Some(v) => {
            writeln!(
                out,
                "# Against the policy in force (version {v}): {new} of {} rules grant NEW ACCESS.",
                rules.len()
            )?;
        }
        None => out.push_str("# Not compared with a policy in force: every rule is new access.\n"),
    }
    out.push_str(
        "# Review each rule, then put this file beside the agent's policy file;\n\
         # without `mode = \"learn\"` in it, the agent is enforced again.\n",
    );
    writeln!(out, "agents = [{}]", toml_str(h.agent))?;
    out.push_str("default = \"deny\"\n");
    Ok(())
}

pub fn rule(r: &RuleText<'_>, out: &mut String) -> fmt::Result {
    out.push('\n');
    writeln!(
        out,
        "# {}: seen {}, first {}, last {}{}.",
        r.action,
        times(r.count),
        ts(&r.first),
        ts(&r.last),
        if r.learned > 0 {
            format!(", {} let through by learn mode", r.learned)
        } else {
            String::new()
        }
    )?;
    match &r.today {
        Some(t) if t.is_new_access() => {
            writeln!(out, "# NEW ACCESS: today {}.", t.describe(r.count))?;
        }
        Some(_) => out.push_str("# No new access: the policy in force allows all of these.\n"),
        None => out.push_str("# NEW ACCESS: not compared with a policy in force.\n"),
    }
    for note in &r.scope.notes {
        writeln!(out, "# note: {note}")?;
    }
    out.push_str("[[rule]]\n");
    writeln!(out, "id = {}", toml_str(&r.id))?;
    writeln!(out, "action = {}", toml_str(r.action))?;
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| toml_str(i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !r.scope.hosts.is_empty() {
        writeln!(out, "hosts = [{}]", list(&r.scope.hosts))?;
    }
    if !r.scope.cidrs.is_empty() {
        writeln!(out, "cidrs = [{}]", list(&r.scope.cidrs))?;
    }
    if !r.scope.ports.is_empty() {
        let ports: Vec<String> = r.scope.ports.iter().map(u64::to_string).collect();
        writeln!(out, "ports = [{}]", ports.join(", "))?;
    }
    if !r.scope.when.is_empty() {
        writeln!(out, "when = {}", toml_str(&r.scope.when.join(" && ")))?;
    }
    out.push_str("decision = \"allow\"\n");
    Ok(())
}

pub fn contain(p: &ContainProposal, out: &mut String) -> fmt::Result {
    if p.is_empty() {
        return Ok(());
    }
    out.push_str(
        "\n# Host containment refused these; each entry lets the agent do it.\n[contain]\n",
    );
    let list = |name: &str,
                items: &std::collections::BTreeMap<String, Seen>,
                out: &mut String|
     -> fmt::Result {
        if items.is_empty() {
            return Ok(());
        }
        writeln!(out, "{name} = [")?;
        for (path, seen) in items {
            writeln!(
                out,
                "  {}, # refused {}, first {}, last {}",
                toml_str(path),
                times(seen.count),
                ts(&seen.first),
                ts(&seen.last)
            )?;
        }
        out.push_str("]\n");
        Ok(())
    };
    list("write", &p.write, out)?;
    list("unix_sockets", &p.unix_sockets, out)?;
    for (path, seen) in &p.reads {
        writeln!(
            out,
            "# read refused {}: {} (`read` replaces the default list: add it by hand if needed)",
            times(seen.count),
            toml_str(path)
        )?;
    }
    Ok(())
}
