//! `cordon policy suggest`: reads the agent's trail (from the running
//! daemon, from its database when it is stopped, or from an exported
//! jsonl file), loads the policy in force for the diff, and prints the
//! proposal (`crate::suggest`, pure) to stdout.
use std::{io::BufRead, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use cordon_audit::AuditRecord;

use super::args::{Client, PolicyDirArg, parse_duration};
use crate::{
    control::{
        client::ClientError,
        proto::Request,
        stream::{StreamError, call_stream},
    },
    paths::Paths,
};

/// Longest wait for the next exported line.
const IDLE: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
pub struct SuggestArgs {
    /// The agent to propose a policy for.
    #[arg(long)]
    pub agent: String,
    /// Only what happened in this last stretch of time (e.g. 2h, 30m).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Read records from this exported jsonl file (`cordon audit export`)
    /// instead of the daemon's trail.
    #[arg(long, value_name = "FILE")]
    pub from_audit: Option<PathBuf>,
    /// The policy in force, to name the new access each rule grants.
    #[command(flatten)]
    pub policies: PolicyDirArg,
    #[command(flatten)]
    pub client: Client,
}

pub fn run(a: &SuggestArgs) -> anyhow::Result<ExitCode> {
    let since = match a.since {
        Some(d) => Some(Utc::now() - chrono::Duration::from_std(d).context("--since")?),
        None => None,
    };
    let records = match &a.from_audit {
        Some(file) => read_jsonl(file)?,
        None => from_trail(&Paths::resolve(a.client.state_dir.as_deref()), since)?,
    };
    let dir = a.policies.path();
    let current = cordon_policy::PolicySet::load_dir(&dir).with_context(|| {
        format!(
            "loading the policy in force from {} to compare with (pass --policies DIR)",
            dir.display()
        )
    })?;
    let text = crate::suggest::suggest(&crate::suggest::Input {
        agent: &a.agent,
        records: &records,
        since,
        current: Some(&current),
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// An exported file, one stored record per line; a line that is not a
/// record is an error naming it (a silently skipped record could hide a
/// refusal and the proposal would be wrong).
fn read_jsonl(file: &std::path::Path) -> anyhow::Result<Vec<AuditRecord>> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse(&line).with_context(|| format!("{}:{}", file.display(), n + 1))?);
    }
    Ok(out)
}

fn parse(line: &str) -> anyhow::Result<AuditRecord> {
    serde_json::from_str(line).context("not an audit record (export with --format jsonl)")
}

/// The daemon's records through its control socket, or its database when
/// it is not running (as `cordon audit export` does).
fn from_trail(p: &Paths, since: Option<DateTime<Utc>>) -> anyhow::Result<Vec<AuditRecord>> {
    let req = Request::AuditExport {
        since: since.map(|t| t.to_rfc3339()),
        until: None,
        format: "jsonl".into(),
    };
    let mut out = Vec::new();
    let mut bad = None;
    let streamed = call_stream(&p.socket, &req, IDLE, |line| {
        match parse(line) {
            Ok(r) => out.push(r),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
        Ok(())
    });
    match streamed {
        Ok(_) => match bad {
            Some(e) => Err(e.context("a record from the daemon")),
            None => Ok(out),
        },
        Err(StreamError::Client(ClientError::NoSocket(_) | ClientError::Stale(_))) => {
            let db = super::audit::open_offline(p)?;
            let mut bytes = Vec::new();
            cordon_audit::export(
                &db,
                since,
                None,
                cordon_audit::ExportFormat::Jsonl,
                &mut bytes,
            )?;
            let text = String::from_utf8(bytes).context("the exported trail is not UTF-8")?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse)
                .collect()
        }
        Err(e) => bail!("reading the audit trail from the daemon: {e}"),
    }
}
