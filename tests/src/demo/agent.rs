//! Running agents for the demo: curl through `cordon run`, the answer split into status and
//! body, and background agents that are killed (whole process group) when dropped.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::process::{Captured, PIPE_GRACE};

/// Bound for one foreground agent command.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A curl invocation: what the agent runs.
#[derive(Debug, Clone)]
pub struct Curl {
    args: Vec<String>,
}

impl Curl {
    pub fn new(method: &str, url: &str) -> Self {
        let mut args: Vec<String> = ["curl", "-sS", "--max-time", "15"].map(String::from).into();
        if method != "GET" {
            args.extend(["-X".into(), method.into()]);
        }
        args.push(url.into());
        Self { args }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A JSON body (sets the content type).
    pub fn json(mut self, body: &str) -> Self {
        self.insert_before_url(&["-H", "content-type: application/json", "-d", body]);
        self
    }

    /// A form body, as Stripe takes it.
    pub fn form(mut self, body: &str) -> Self {
        self.insert_before_url(&["-d", body]);
        self
    }

    pub fn header(mut self, header: &str) -> Self {
        self.insert_before_url(&["-H", header]);
        self
    }

    pub fn max_time(mut self, secs: u32) -> Self {
        if let Some(i) = self.args.iter().position(|a| a == "--max-time") {
            self.args[i + 1] = secs.to_string();
        }
        self
    }

    /// Print the status code on a last line of its own, so the body stays readable.
    fn with_status(&self) -> Vec<String> {
        let mut a = self.args.clone();
        let url = a.pop().unwrap_or_default();
        a.extend(["-w".into(), "\\n[HTTP %{http_code}]\\n".into(), url]);
        a
    }

    fn insert_before_url(&mut self, extra: &[&str]) {
        let at = self.args.len().saturating_sub(1);
        for (i, e) in extra.iter().enumerate() {
            self.args.insert(at + i, (*e).to_owned());
        }
    }

    /// The agent's command line, status line included.
    pub fn argv(&self) -> Vec<String> {
        self.with_status()
    }
}

/// What an agent's curl got back.
#[derive(Debug)]
pub struct HttpResult {
    /// `None` when curl got no HTTP answer at all (connection refused, reset, timeout).
    pub status: Option<u16>,
    pub body: String,
    pub output: Output,
}

impl HttpResult {
    pub fn parse(output: Output) -> Self {
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = match text.trim_end().rsplit_once("[HTTP ") {
            Some((body, code)) => (
                body.trim_end().to_owned(),
                code.trim_end_matches(']')
                    .parse::<u16>()
                    .ok()
                    .filter(|c| *c != 0),
            ),
            None => (text.trim_end().to_owned(), None),
        };
        Self {
            status,
            body,
            output,
        }
    }

    /// `HTTP 403`, or what curl said when there was no HTTP answer.
    pub fn summary(&self) -> String {
        match self.status {
            Some(code) => format!("HTTP {code}"),
            None => String::from_utf8_lossy(&self.output.stderr)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no answer")
                .trim()
                .to_owned(),
        }
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `field` of a JSON body as a string, `""` when absent.
    pub fn field(&self, field: &str) -> String {
        self.json()
            .and_then(|v| v.get(field).and_then(|f| f.as_str().map(str::to_owned)))
            .unwrap_or_default()
    }
}

/// A child in its own process group, killed with all its descendants when dropped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    out: Captured,
    err: Captured,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        let what = super::narrate::describe(&cmd);
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn `{what}`"))?;
        let out = Captured::start(child.stdout.take());
        let err = Captured::start(child.stderr.take());
        Ok(Self {
            child: Some(child),
            out,
            err,
        })
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Wait at most `timeout` for the exit; `None` if it is still running.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<Option<Output>> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("background agent already reaped");
        };
        let status: ExitStatus = loop {
            if let Some(s) = child.try_wait().context("wait for a background agent")? {
                break s;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        let grace_until = Instant::now() + PIPE_GRACE;
        Ok(Some(Output {
            status,
            stdout: self.out.take(grace_until),
            stderr: self.err.take(grace_until),
        }))
    }

    /// SIGKILL the whole group and reap the leader.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn out(stdout: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(0),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn status_line_is_split_from_the_body() {
        let r = HttpResult::parse(out("{\"a\":\"b\"}\n[HTTP 403]\n"));
        assert_eq!(r.status, Some(403));
        assert_eq!(r.field("a"), "b");
    }

    #[test]
    fn no_http_answer_has_no_status() {
        assert_eq!(HttpResult::parse(out("\n[HTTP 000]\n")).status, None);
        assert_eq!(HttpResult::parse(out("")).status, None);
    }

    #[test]
    fn bodies_and_headers_go_before_the_url() {
        let argv = Curl::new("POST", "https://h/p").json("{}").argv();
        assert_eq!(argv.last().map(String::as_str), Some("https://h/p"));
        assert!(argv.windows(2).any(|w| w == ["-X", "POST"]));
        assert!(argv.windows(2).any(|w| w == ["-d", "{}"]));
    }
}
