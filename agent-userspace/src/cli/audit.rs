//! `cordon audit tail | export | verify`. Through the daemon while it runs
//! (it holds the database lock); as root, straight from the database file
//! when it does not, so an auditor can check a stopped host.
use std::{
    io::{ErrorKind, Write},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::args::Client;
use crate::{
    control::{
        audit_read,
        client::{self, ClientError},
        proto::Request,
        stream::{StreamError, call_stream},
    },
    paths::Paths,
};

/// Longest wait for the next streamed line (the daemon sends keepalives
/// every 10 s while following).
const IDLE: Duration = Duration::from_secs(60);
/// Verifying walks the whole chain.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(600);
/// `verify` exit status for anything that stops the check itself.
const EXIT_IO: u8 = 2;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Recent decisions, newest last; `-f` keeps printing new ones.
    Tail(TailArgs),
    /// Records in a time window, one JSON object per line.
    Export(ExportArgs),
    /// Check the hash chain; exit 1 naming the first bad record.
    Verify {
        /// Print the verification report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: Client,
    },
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Keep following new records.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only this agent's records.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only allow, deny or pending.
    #[arg(long, value_parser = ["allow", "deny", "pending"])]
    pub decision: Option<String>,
    /// Print the stored JSON records instead of one-line summaries.
    #[arg(long)]
    pub json: bool,
    /// How many recent records.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: usize,
    #[command(flatten)]
    pub client: Client,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// From this time on (RFC 3339, inclusive).
    #[arg(long, value_parser = since)]
    pub since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339, exclusive).
    #[arg(long, value_parser = until)]
    pub until: Option<DateTime<Utc>>,
    /// jsonl (stored records, verifiable line by line) or ocsf (OCSF 1.3 events).
    #[arg(long, value_parser = ["jsonl", "ocsf"], default_value = "jsonl")]
    pub format: String,
    #[command(flatten)]
    pub client: Client,
}

fn since(s: &str) -> Result<DateTime<Utc>, String> {
    audit_read::parse_time("--since", s)
}

fn until(s: &str) -> Result<DateTime<Utc>, String> {
    audit_read::parse_time("--until", s)
}

pub fn run(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Tail(a) => tail(a),
        AuditCmd::Export(a) => export(a),
        AuditCmd::Verify { json, client } => Ok(verify(&client, json)),
    }
}

/// Prints one line; a closed stdout (`| head`) ends quietly.
fn print(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Runs a streaming request; `Ok(None)` when the daemon is not running.
fn streamed(p: &Paths, req: &Request) -> anyhow::Result<Option<Value>> {
    match call_stream(&p.socket, req, IDLE, print) {
        Ok(body) => Ok(Some(body)),
        Err(StreamError::Client(ClientError::NoSocket(_) | ClientError::Stale(_))) => Ok(None),
        Err(StreamError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => Ok(Some(Value::Null)),
        Err(e) => Err(e.into()),
    }
}

/// The database of a stopped daemon. `open`, never `create`: a wrong
/// `--state-dir` must not produce an empty log that "verifies". Records a
/// crashed daemon left only in the write-ahead log are moved in first, as
/// the next daemon start would.
pub(super) fn open_offline(p: &Paths) -> anyhow::Result<redb::Database> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the daemon is not running and reading its database directly needs root");
    }
    if !p.db.exists() {
        bail!(
            "no Cordon database at {} (check --state-dir)",
            p.db.display()
        );
    }
    let db = redb::Database::open(&p.db)
        .with_context(|| format!("opening {} (is a daemon still holding it?)", p.db.display()))?;
    cordon_audit::replay_wal(&db, &p.audit_wal)
        .with_context(|| format!("recovering records from {}", p.audit_wal.display()))?;
    Ok(db)
}

fn tail(a: TailArgs) -> anyhow::Result<ExitCode> {
    let p = Paths::resolve(a.client.state_dir.as_deref());
    let req = Request::AuditTail {
        agent: a.agent.clone(),
        decision: a.decision.clone(),
        lines: a.lines,
        follow: a.follow,
        json: a.json,
    };
    if streamed(&p, &req)?.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    let db = open_offline(&p)?;
    let filter = audit_read::filter(a.agent, a.decision.as_deref()).map_err(anyhow::Error::msg)?;
    let (recs, head) = audit_read::tail(&db, &filter, a.lines)?;
    let outcomes = audit_read::outcomes_for(&db, &recs, head)?;
    for line in audit_read::lines(&recs, &outcomes, a.json)? {
        match print(&line) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
            other => other?,
        }
    }
    if a.follow {
        eprintln!("cordon: the daemon is not running: no new records will come (not following)");
    }
    Ok(ExitCode::SUCCESS)
}

fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let p = Paths::resolve(a.client.state_dir.as_deref());
    let req = Request::AuditExport {
        since: a.since.map(|t| t.to_rfc3339()),
        until: a.until.map(|t| t.to_rfc3339()),
        format: a.format.clone(),
    };
    if streamed(&p, &req)?.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    let db = open_offline(&p)?;
    let format = a.format.parse()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match cordon_audit::export(&db, a.since, a.until, format, &mut out) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(cordon_audit::AuditError::Io(e)) if e.kind() == ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}

/// Exit 0: intact; 1: a record is not what was written; 2: could not check.
fn verify(c: &Client, json: bool) -> ExitCode {
    let report = match verify_report(c) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cordon: error: {e:#}");
            return ExitCode::from(EXIT_IO);
        }
    };
    if json {
        println!("{report}");
    } else {
        println!("{}", summary(&report));
    }
    if report["problem"].is_null() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn verify_report(c: &Client) -> anyhow::Result<Value> {
    verify_report_at(&Paths::resolve(c.state_dir.as_deref()))
}

/// The verification report from the daemon at `p`, or read offline when
/// none is serving (`cordon doctor` reuses it).
pub fn verify_report_at(p: &Paths) -> anyhow::Result<Value> {
    match client::call(&p.socket, &Request::AuditVerify, VERIFY_TIMEOUT) {
        Ok(v) => Ok(v),
        Err(ClientError::NoSocket(_) | ClientError::Stale(_)) => {
            let db = open_offline(p)?;
            Ok(serde_json::to_value(cordon_audit::verify(&db)?)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// `ok: 42 records verified (...)` or `FAILED at seq 7: hash_mismatch: ...`.
pub fn summary(report: &Value) -> String {
    let short = |v: &Value| {
        v.as_str()
            .map_or("?", |h| &h[..h.len().min(16)])
            .to_string()
    };
    let start = match report.get("checkpoint").filter(|c| !c.is_null()) {
        Some(c) => format!(
            "checkpoint seq {} hash {}, pruned {}",
            c["seq"],
            short(&c["hash"]),
            c["pruned_at"].as_str().unwrap_or("?")
        ),
        None => "checkpoint: genesis".into(),
    };
    let last = match report.get("last_good").filter(|l| !l.is_null()) {
        Some(l) => format!("seq {} hash {}", l["seq"], short(&l["hash"])),
        None => "none".into(),
    };
    let checked = report["checked"].as_u64().unwrap_or(0);
    let outcomes = outcome_summary(report);
    match report.get("problem").filter(|p| !p.is_null()) {
        None => format!("ok: {checked} records verified ({start}; head {last}){outcomes}"),
        Some(p) => format!(
            "FAILED at seq {}: {}: {} ({checked} records verified before it; last good {last}; {start})",
            p["seq"],
            p["kind"].as_str().unwrap_or("?"),
            p["detail"].as_str().unwrap_or("")
        ),
    }
}

/// `; outcomes: 40 completed, 1 failed, 2 aborted, 0 unknown; 3 open (#51, #52, #53)`:
/// every gap between what was allowed and what is known to have happened.
fn outcome_summary(report: &Value) -> String {
    let Some(o) = report.get("outcomes").filter(|o| o.is_object()) else {
        return String::new();
    };
    let n = |k: &str| o[k].as_u64().unwrap_or(0);
    let mut s = format!(
        "; outcomes: {} completed, {} failed, {} aborted, {} unknown; {} open",
        n("completed"),
        n("failed"),
        n("aborted"),
        n("unknown"),
        n("open")
    );
    let listed: Vec<String> = o["open_seqs"]
        .as_array()
        .map(|a| a.iter().map(|v| format!("#{v}")).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        let more = if n("open") > listed.len() as u64 {
            ", …"
        } else {
            ""
        };
        s.push_str(&format!(" ({}{more})", listed.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_clean_report_says_ok_with_the_count() {
        let r = json!({"checked": 42, "checkpoint": null,
            "last_good": {"seq": 42, "hash": "ab".repeat(32)}, "problem": null});
        let s = summary(&r);
        assert!(
            s.starts_with("ok: 42 records verified (checkpoint: genesis"),
            "{s}"
        );
        assert!(s.contains("head seq 42 hash abababababababab"), "{s}");
    }

    #[test]
    fn the_summary_counts_outcomes_and_names_open_decisions() {
        let r = json!({"checked": 9, "checkpoint": null, "last_good": null, "problem": null,
            "outcomes": {"completed": 3, "failed": 1, "aborted": 1, "unknown": 0,
                "open": 2, "open_seqs": [7, 9]}});
        let s = summary(&r);
        assert!(
            s.ends_with("; outcomes: 3 completed, 1 failed, 1 aborted, 0 unknown; 2 open (#7, #9)"),
            "{s}"
        );
    }

    #[test]
    fn a_problem_names_the_seq_and_kind() {
        let r = json!({"checked": 6, "checkpoint": {"seq": 3, "hash": "cd".repeat(32),
            "ts": "t", "pruned_at": "2025-05-01T00:00:00Z"},
            "last_good": {"seq": 9, "hash": "ab".repeat(32)},
            "problem": {"seq": 10, "kind": "hash_mismatch", "detail": "edited"}});
        let s = summary(&r);
        assert!(
            s.starts_with("FAILED at seq 10: hash_mismatch: edited"),
            "{s}"
        );
        assert!(s.contains("checkpoint seq 3"), "{s}");
    }

    #[test]
    fn export_times_must_be_rfc3339() {
        assert!(since("2025-05-01T00:00:00Z").is_ok());
        assert!(until("May 1st").is_err());
    }
}
