//! `cordon approve ID --always`: the answer becomes a policy file, never a
//! grant in memory. The file holds one `approved` rule, for each agent of
//! the chain, that matches exactly that chain and the action that asked (and its params, with `--same-params`),
//! under a header saying who approved it, when, and which approval it
//! answers, so it reads as a reviewed change next to the files it amends.
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// What the standing approval is made from.
pub struct Always<'a> {
    pub approval: &'a str,
    pub chain: &'a [String],
    pub action: &'a str,
    /// Set to scope the rule to exactly these params.
    pub params: Option<&'a Map<String, Value>>,
    pub rule: &'a str,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlwaysError {
    #[error("action `{0}` reads as a pattern (`*` or `?`); approve it once or with --uses/--for")]
    Pattern(String),
    #[error("the approval names no agent")]
    NoAgent,
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    #[error("writing {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("rendering the rule: {0}")]
    Render(String),
}

#[derive(Serialize)]
struct File<'a> {
    agents: Vec<&'a str>,
    rule: [Rule<'a>; 1],
}

#[derive(Serialize)]
struct Rule<'a> {
    id: String,
    action: &'a str,
    when: String,
    decision: &'static str,
    reason: String,
}

pub fn file_name(approval: &str) -> String {
    format!("approved-{approval}.toml")
}

pub fn rule_id(approval: &str) -> String {
    format!("always-{approval}")
}

/// The file's text. Pure.
pub fn render(a: &Always<'_>) -> Result<String, AlwaysError> {
    if a.action.contains(['*', '?']) {
        return Err(AlwaysError::Pattern(a.action.to_string()));
    }
    if a.chain.is_empty() || a.chain.iter().any(String::is_empty) {
        return Err(AlwaysError::NoAgent);
    }
    // A human's yes answers for the whole request, whichever agents'
    // policies asked: the rule applies to every agent of the chain, and
    // only when the chain is exactly this one.
    let mut agents: Vec<&str> = Vec::new();
    for agent in a.chain {
        if !agents.contains(&agent.as_str()) {
            agents.push(agent);
        }
    }
    let chain: Vec<Value> = a.chain.iter().cloned().map(Value::String).collect();
    let mut when = format!("chain == {}", cel_literal(&Value::Array(chain)));
    if let Some(params) = a.params {
        when.push_str(&format!(" && size(params) == {}", params.len()));
        for (k, v) in params {
            when.push_str(&format!(
                " && params[{}] == {}",
                cel_literal(&Value::String(k.clone())),
                cel_literal(v)
            ));
        }
    }
    let at = a.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let body = toml::to_string(&File {
        agents,
        rule: [Rule {
            id: rule_id(a.approval),
            action: a.action,
            when,
            decision: "approved",
            reason: format!(
                "approved always by {} at {at} (approval {})",
                a.by, a.approval
            ),
        }],
    })
    .map_err(|e| AlwaysError::Render(e.to_string()))?;
    let scope = if a.params.is_some() {
        "with exactly these params"
    } else {
        "with any params"
    };
    let header = [
        format!(
            "# A standing approval, written by `cordon approve {} --always`.",
            safe(a.approval)
        ),
        format!("# Approved by {} at {at}.", safe(a.by)),
        format!(
            "# It answers approval {}: {} asked for {} and rule `{}` held it for a human.",
            safe(a.approval),
            safe(&a.chain.join("/")),
            safe(a.action),
            safe(a.rule)
        ),
        format!("# From now on that action by that chain, {scope}, goes ahead without asking;"),
        "# a deny still wins. Delete this file to take the approval back.".to_string(),
    ];
    Ok(format!("{}\n\n{body}", header.join("\n")))
}

/// The `grant.granted` record of a standing approval: the file and the
/// policy version that holds it.
pub fn record(a: &Always<'_>, file: &str, version: &str) -> cordon_audit::NewRecord {
    cordon_audit::NewRecord {
        agent: a.chain.last().cloned(),
        chain: Some(a.chain.join("/")),
        action: Some(a.action.to_string()),
        params: a.params.cloned().unwrap_or_default(),
        rule: Some(rule_id(a.approval)),
        reason: Some(format!(
            "always: {file} in the policy directory (policy version {version}); \
             answers approval {} asked by rule {}",
            a.approval, a.rule
        )),
        approver: Some(a.by.to_string()),
        policy_version: Some(version.to_string()),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::GrantGranted)
    }
}

/// Writes the file next to the policies it amends, whole or not at all,
/// root-owned and not writable by others (what strict modes require). An
/// existing file is never replaced.
pub fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, AlwaysError> {
    let path = dir.join(name);
    if path.exists() {
        return Err(AlwaysError::Exists(path));
    }
    // Not `*.toml`: a reload that lists the directory meanwhile skips it.
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| AlwaysError::Io {
            path,
            message: e.to_string(),
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(path)
}

/// One line of a comment: nothing an agent chose (an action or tool name)
/// can end the comment and start a line of policy.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A JSON value as a CEL literal that compares equal to the value Cordon
/// gives `params` (integral numbers are ints).
pub fn cel_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                format!("{u}u")
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    format!("{}", f as i64)
                } else {
                    format!("{f:?}")
                }
            }
        }
        Value::String(s) => cel_string(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(cel_literal).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", cel_string(k), cel_literal(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn cel_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
