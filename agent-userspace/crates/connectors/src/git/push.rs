//! One action per ref of a push: `github.git.push {owner, repo, ref, branch, tag, old, new,
//! create, delete, force}` (or `git.push {host, port, repo, …}` on any other server).

use super::GitPushError;
use super::ancestry::reaches;
use super::commands::{PushCommands, RefCommand, parse_commands};
use super::pack::{PackCommits, PackLimits, PackStop, scan};
use serde_json::{Map, Value};

/// A parsed push: its commands, what each one does, and how far the pack was read.
#[derive(Debug, Clone)]
pub struct Push {
    pub commands: PushCommands,
    pub updates: Vec<RefUpdate>,
    /// Why reading the pack stopped (`Complete` when it was read to the end).
    pub pack: PackStop,
    /// What the pack held (commits and delta counts), for diagnostics and audit.
    pub commits: PackCommits,
}

/// One ref update and what Cordon could establish about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub command: RefCommand,
    /// True unless the update creates or deletes the ref, leaves it unchanged, or the pack
    /// proves that `new` descends from `old` (see docs/connectors.md, "git push").
    pub force: bool,
}

impl RefUpdate {
    /// The params of this ref's action (added to the request's own, e.g. owner and repo).
    pub fn params(&self) -> Map<String, Value> {
        let c = &self.command;
        let mut p = Map::new();
        p.insert("ref".into(), Value::String(c.refname.clone()));
        // Always present (empty when not a branch / tag) so `params.branch == "main"` is a
        // plain comparison for every ref rather than an evaluation error.
        let branch = c.refname.strip_prefix("refs/heads/").unwrap_or("");
        let tag = c.refname.strip_prefix("refs/tags/").unwrap_or("");
        p.insert("branch".into(), Value::String(branch.into()));
        p.insert("tag".into(), Value::String(tag.into()));
        p.insert("old".into(), Value::String(c.old.to_hex()));
        p.insert("new".into(), Value::String(c.new.to_hex()));
        p.insert("create".into(), Value::Bool(c.is_create()));
        p.insert("delete".into(), Value::Bool(c.is_delete()));
        p.insert("force".into(), Value::Bool(self.force));
        p
    }
}

/// Parse a receive-pack request body (or its first bytes: a pack cut short just proves less)
/// into per-ref updates.
pub fn parse_push(body: &[u8], limits: &PackLimits) -> Result<Push, GitPushError> {
    let commands = parse_commands(body)?;
    let pack_bytes = &body[commands.pack_offset..];
    let hash = commands.capabilities.object_format;
    let needs_pack = commands.commands.iter().any(|c| !c.is_delete());
    let (commits, pack) = scan(pack_bytes, hash, limits);
    if needs_pack && pack == PackStop::NoPack {
        tracing::debug!("push updates a ref but sent no pack; no fast-forward can be proven");
    }
    let updates = commands
        .commands
        .iter()
        .map(|c| {
            let trivially_safe = c.is_create() || c.is_delete() || c.old == c.new;
            RefUpdate {
                command: c.clone(),
                force: !trivially_safe && !reaches(&commits.parents, &c.new, &c.old),
            }
        })
        .collect();
    Ok(Push {
        commands,
        updates,
        pack,
        commits,
    })
}
