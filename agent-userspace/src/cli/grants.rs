//! `cordon approvals`, `cordon approve` and `cordon grants`: what waits for
//! a human, the four answers, and the standing grants they left.
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{
    args::{Client, parse_duration},
    ops::{TIMEOUT, paths},
};
use crate::control::{client, proto::Request};

#[derive(Args, Debug)]
pub struct ApprovalsArgs {
    /// One JSON array: every field, with `held_secs` and `answer_within_secs`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: Client,
}

/// With no option the answer is "once": this request only.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    pub id: String,
    /// This request only (the default).
    #[arg(long, conflicts_with_all = ["uses", "grant_for", "always"])]
    pub once: bool,
    /// N uses in all, this request being the first (`--uses 3`: it and two more).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub uses: Option<u32>,
    /// The same action by the same agent chain goes ahead for this long (e.g. 1h).
    #[arg(long = "for", value_parser = parse_duration)]
    pub grant_for: Option<std::time::Duration>,
    /// Write an `approved` rule into the policy directory: from now on, without asking.
    #[arg(long, conflicts_with_all = ["uses", "grant_for"])]
    pub always: bool,
    /// Only requests with exactly this request's params (for --uses, --for, --always).
    #[arg(long)]
    pub same_params: bool,
    #[command(flatten)]
    pub client: Client,
}

#[derive(Args, Debug)]
pub struct GrantsArgs {
    #[command(subcommand)]
    pub cmd: Option<GrantsCmd>,
    /// One JSON array of the grants in force.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: Client,
}

#[derive(Subcommand, Debug)]
pub enum GrantsCmd {
    /// Take a grant out of force now.
    Revoke { id: String },
}

pub fn approvals(a: &ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let body = client::call(&paths(&a.client).socket, &Request::Approvals, TIMEOUT)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", approvals_table(&body));
    Ok(ExitCode::SUCCESS)
}

/// One line per approval (ID, chain, action, how long held, params), then
/// indented: the rule that asked and why, and the credential that would go
/// in. Pure, for tests.
pub fn approvals_table(body: &Value) -> String {
    let mut out = format!(
        "{:<10} {:<24} {:<28} {:>6}  PARAMS\n",
        "ID", "AGENT", "ACTION", "HELD"
    );
    for a in body.as_array().into_iter().flatten() {
        let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
        out.push_str(&format!(
            "{:<10} {:<24} {:<28} {:>5}s  {}\n",
            s("id"),
            s("chain"),
            s("action"),
            a["held_secs"].as_i64().unwrap_or(0),
            a["params"]
        ));
        let by = match s("decided_by") {
            b if b.is_empty() => String::new(),
            b => format!(" (policy of {b})"),
        };
        out.push_str(&format!(
            "{:<10} rule {}{by}: {}\n",
            "",
            s("rule"),
            s("reason")
        ));
        let credential = a["credential"]
            .as_str()
            .map_or("none".to_string(), |c| format!("vault entry {c}"));
        out.push_str(&format!(
            "{:<10} credential: {credential}; answer within {}s\n",
            "",
            a["answer_within_secs"].as_i64().unwrap_or(0)
        ));
    }
    out
}

pub fn approve(a: &ApproveArgs) -> anyhow::Result<ExitCode> {
    if a.same_params && a.uses.is_none() && a.grant_for.is_none() && !a.always {
        bail!("--same-params scopes a standing grant: add --uses N, --for or --always");
    }
    let req = Request::Approve {
        id: a.id.clone(),
        grant_secs: a.grant_for.map(|d| d.as_secs()),
        uses: a.uses,
        always: a.always,
        same_params: a.same_params,
    };
    let body = client::call(&paths(&a.client).socket, &req, TIMEOUT)?;
    println!(
        "approved {}: {} {}",
        a.id,
        body["agent"].as_str().unwrap_or(""),
        body["action"].as_str().unwrap_or("")
    );
    let standing = &body["standing"];
    if let Some(g) = standing.get("grant") {
        println!("grant {}: {}", g["id"].as_str().unwrap_or("?"), describe(g));
    } else if let Some(f) = standing["file"].as_str() {
        println!("wrote {f} in the policy directory; it is in force");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: &GrantsArgs) -> anyhow::Result<ExitCode> {
    if let Some(GrantsCmd::Revoke { id }) = &a.cmd {
        let p = paths(&a.client);
        let req = Request::GrantRevoke { id: id.clone() };
        let body = client::call(&p.socket, &req, TIMEOUT)?;
        println!(
            "revoked {}: {} {}",
            id,
            body["agent"].as_str().unwrap_or(""),
            body["action"].as_str().unwrap_or("")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let body = client::call(&paths(&a.client).socket, &Request::Grants, TIMEOUT)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", grants_table(&body));
    Ok(ExitCode::SUCCESS)
}

/// ID, chain, action, uses left, expiry, who granted, then the params a
/// scoped grant needs. Pure, for tests.
pub fn grants_table(body: &Value) -> String {
    let mut out = format!(
        "{:<10} {:<20} {:<24} {:>9} {:<20} {:<20} PARAMS\n",
        "ID", "AGENT", "ACTION", "USES LEFT", "EXPIRES", "GRANTED BY"
    );
    for g in body.as_array().into_iter().flatten() {
        let chain: Vec<&str> = g["chain"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let uses = match (g["uses_left"].as_u64(), g["uses"].as_u64()) {
            (Some(l), Some(n)) => format!("{l}/{n}"),
            _ => "-".into(),
        };
        let params = if g["params"].is_object() {
            g["params"].to_string()
        } else {
            "(any)".into()
        };
        out.push_str(&format!(
            "{:<10} {:<20} {:<24} {:>9} {:<20} {:<20} {}\n",
            g["id"].as_str().unwrap_or(""),
            chain.join("/"),
            g["action"].as_str().unwrap_or(""),
            uses,
            g["until"].as_str().unwrap_or("-"),
            g["granted_by"].as_str().unwrap_or(""),
            params
        ));
    }
    out
}

fn describe(g: &Value) -> String {
    let mut parts = Vec::new();
    if let (Some(l), Some(n)) = (g["uses_left"].as_u64(), g["uses"].as_u64()) {
        parts.push(format!("{l} more of {n} uses"));
    }
    if let Some(u) = g["until"].as_str() {
        parts.push(format!("until {u}"));
    }
    if g["params"].is_object() {
        parts.push("these params only".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests;
