//! What a human operator sees and does through the CLI while agents run: the pending approvals
//! (`cordon approvals`), the instance table (`cordon ps`), and agents left running in the
//! background so a test can act while a request is held open; and curl run from the host
//! (outside every agent), as an operator's browser or script reaches the console.

use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::process::{describe, run_with_timeout, wait_until};

/// One approval of `cordon approvals --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    /// The agent chain, `parent/child` for a sub-agent.
    pub agent: String,
    pub action: String,
    pub params: serde_json::Value,
    /// The rule that asked for a human.
    pub rule: String,
    /// The vault entry that would be injected, if any.
    pub credential: Option<String>,
    /// Seconds the request has been held.
    pub held_secs: i64,
}

/// One row of `cordon ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsRow {
    pub agent: String,
    pub instance: String,
    /// `running`, `frozen` or `killed`.
    pub state: String,
    /// `LEARN` or `enforce`.
    pub mode: String,
    pub allowed: u64,
    pub denied: u64,
}

/// Every approval the daemon is waiting on.
pub fn pending(daemon: &Daemon) -> Result<Vec<Pending>> {
    Ok(parse_approvals(&checked(daemon, &["approvals", "--json"])?))
}

/// Wait (bounded) until an approval for `action` is pending, and return it.
pub fn wait_for_pending(daemon: &Daemon, action: &str, timeout: Duration) -> Result<Pending> {
    let mut found = None;
    let mut last_err = None;
    let waited = wait_until(
        &format!("a pending approval for {action}"),
        timeout,
        || match pending(daemon) {
            Ok(rows) => {
                found = rows.into_iter().find(|p| p.action == action);
                found.is_some()
            }
            Err(e) => {
                last_err = Some(e);
                false
            }
        },
    );
    match (waited, found) {
        (Ok(()), Some(p)) => Ok(p),
        (Err(e), _) => Err(last_err.unwrap_or(e)),
        (Ok(()), None) => Err(Error::Setup(format!("no pending approval for {action}"))),
    }
}

/// The instance table of `cordon ps`.
pub fn ps(daemon: &Daemon) -> Result<Vec<PsRow>> {
    Ok(parse_ps(&checked(daemon, &["ps"])?))
}

fn checked(daemon: &Daemon, args: &[&str]) -> Result<String> {
    let out = daemon.cordon(args)?;
    if !out.status.success() {
        return Err(Error::Command {
            command: format!("cordon {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The JSON array `cordon approvals --json` prints; unreadable text is no approvals.
pub fn parse_approvals(text: &str) -> Vec<Pending> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    rows.iter()
        .map(|v| Pending {
            id: s(v, "id"),
            agent: s(v, "chain"),
            action: s(v, "action"),
            params: v["params"].clone(),
            rule: s(v, "rule"),
            credential: v["credential"].as_str().map(str::to_owned),
            held_secs: v["held_secs"].as_i64().unwrap_or(0),
        })
        .collect()
}

/// `AGENT INSTANCE STATE MODE UPTIME ALLOWED DENIED COST [PIDS]` rows after a header line.
pub fn parse_ps(text: &str) -> Vec<PsRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some(PsRow {
                agent: (*cols.first()?).to_owned(),
                instance: (*cols.get(1)?).to_owned(),
                state: (*cols.get(2)?).to_owned(),
                mode: (*cols.get(3)?).to_owned(),
                allowed: cols.get(5)?.parse().ok()?,
                denied: cols.get(6)?.parse().ok()?,
            })
        })
        .collect()
}

/// A command (usually `cordon run ...`) running on its own thread, bounded by a timeout, so the
/// test can approve, edit policy or kill while it runs.
#[derive(Debug)]
pub struct Background {
    what: String,
    handle: JoinHandle<Result<Output>>,
}

impl Background {
    pub fn start(mut cmd: Command, timeout: Duration) -> Self {
        let what = describe(&cmd);
        let handle = std::thread::spawn(move || run_with_timeout(&mut cmd, timeout));
        Self { what, handle }
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Wait for the command (it is killed at its timeout) and return what it printed.
    pub fn join(self) -> Result<Output> {
        self.handle
            .join()
            .map_err(|_| Error::Setup(format!("the thread running `{}` panicked", self.what)))?
    }
}

/// `curl -sS -i ARGS` from the host: the status code of the (last) response and the whole
/// response text. Panics when curl itself fails, naming its output.
pub fn host_curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("/usr/bin/curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(out.status.success(), "{}", crate::world::show(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_keep_params_rule_credential_and_time_held() {
        let text = r#"[{"id":"1a2b3c4d","chain":"parent/child","action":"github.pr.merge",
            "params":{"base":"main","title":"a b"},"rule":"merge-main","credential":"gh",
            "held_secs":3}]"#;
        let rows = parse_approvals(text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, "1a2b3c4d");
        assert_eq!(rows[0].agent, "parent/child");
        assert_eq!(rows[0].action, "github.pr.merge");
        assert_eq!(
            rows[0].params,
            serde_json::json!({"base": "main", "title": "a b"})
        );
        assert_eq!(rows[0].rule, "merge-main");
        assert_eq!(rows[0].credential.as_deref(), Some("gh"));
        assert_eq!(rows[0].held_secs, 3);
    }

    #[test]
    fn ps_rows_read_state_and_counters() {
        let text = "AGENT INSTANCE STATE MODE UPTIME ALLOWED DENIED COST PIDS\n\
                    bot   874358e6 killed  LEARN    2s        3       1   $0.0000  41,42\n\
                    idle  e09543db running enforce  0s        0       0   $0.0000  \n";
        let rows = parse_ps(text);
        assert_eq!(
            rows[0],
            PsRow {
                agent: "bot".into(),
                instance: "874358e6".into(),
                state: "killed".into(),
                mode: "LEARN".into(),
                allowed: 3,
                denied: 1
            }
        );
        assert_eq!(rows[1].state, "running");
    }
}
