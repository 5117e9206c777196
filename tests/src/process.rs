//! Bounded process execution: every child the harness runs has a deadline.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

const POLL: Duration = Duration::from_millis(20);
/// After the child exits, a grandchild may still hold the pipes open; do not wait for it forever.
pub const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Human-readable form of a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` with stdin closed and stdout/stderr captured; kill it if it outlives `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ctx(|| format!("spawn `{what}`"))?;
    let mut out = Captured::start(child.stdout.take());
    let mut err = Captured::start(child.stderr.take());
    let status = match wait_child(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.take(Instant::now() + PIPE_GRACE);
            return Err(Error::Timeout {
                what: format!(
                    "`{what}` (stderr so far: {})",
                    String::from_utf8_lossy(&stderr)
                ),
                after: timeout,
            });
        }
    };
    // One grace for both pipes: a descendant usually holds both.
    let grace_until = Instant::now() + PIPE_GRACE;
    Ok(Output {
        status,
        stdout: out.take(grace_until),
        stderr: err.take(grace_until),
    })
}

/// Like [`run_with_timeout`] but a non-zero exit is an error carrying stderr.
pub fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let out = run_with_timeout(cmd, timeout)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Wait for `child` to exit for at most `timeout`; `None` means it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().ctx(|| "wait for child".into())? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

/// Poll `cond` until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        thread::sleep(POLL);
    }
}

/// What a child writes to one of its pipes, read as it comes on a thread of its own.
#[derive(Debug)]
pub struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    /// Resolves when the pipe ends; `None` once that was seen.
    ended: Option<mpsc::Receiver<()>>,
}

impl Captured {
    pub fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Captured {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, ended) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let bytes = Arc::clone(&bytes);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                // Until EOF or an error (an interrupted read is retried, as
                // `read_to_end` did): either way, what was read is kept.
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => lock(&bytes).extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send(());
            });
        }
        Captured {
            bytes,
            ended: Some(ended),
        }
    }

    /// Everything written, once the pipe has ended or `until` has passed. A descendant that
    /// outlives the child holds the pipe open; what the child wrote before it exited is read
    /// all the same (an empty output here once hid a test's real result), and the wait is said.
    pub fn take(&mut self, until: Instant) -> Vec<u8> {
        let left = until.saturating_duration_since(Instant::now());
        let ended = self.ended.take().map(|e| e.recv_timeout(left));
        if matches!(ended, Some(Err(mpsc::RecvTimeoutError::Timeout))) {
            eprintln!(
                "note: a pipe was still open after the process ended (a descendant holds it); \
                 keeping what was read so far"
            );
        }
        std::mem::take(&mut *lock(&self.bytes))
    }
}

fn lock(bytes: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    bytes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies an executable to `dst` with a `cp` child rather than `std::fs::copy`. A copy made in
/// this process holds `dst` open for writing, and a test on another thread that forks in that
/// window hands the write descriptor to its child until that child execs; executing `dst`
/// meanwhile fails with ETXTBSY. Only `cp` ever holds the write descriptor this way.
pub fn copy_executable(src: &std::path::Path, dst: &std::path::Path) -> Result<()> {
    run_checked(
        Command::new("cp").arg("--").arg(src).arg(dst),
        Duration::from_secs(60),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_written_before_exit_is_kept_when_a_descendant_holds_the_pipe_open() {
        let started = Instant::now();
        // The background sleep inherits stdout and outlives the shell by seconds.
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo written; sleep 6 &"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "written");
        assert!(
            started.elapsed() < PIPE_GRACE + Duration::from_secs(2),
            "waited for the descendant: {:?}",
            started.elapsed()
        );
    }
}
