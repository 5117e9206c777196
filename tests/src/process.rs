//! Bounded process execution: every child the harness runs has a deadline.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

const POLL: Duration = Duration::from_millis(20);
/// After the child exits, a grandchild may still hold the pipes open; do not wait for it forever.
const PIPE_GRACE: Duration = Duration::from_secs(2);

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
    let out_rx = drain(child.stdout.take());
    let err_rx = drain(child.stderr.take());
    let status = match wait_child(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_rx.recv_timeout(PIPE_GRACE).unwrap_or_default();
            return Err(Error::Timeout {
                what: format!(
                    "`{what}` (stderr so far: {})",
                    String::from_utf8_lossy(&stderr)
                ),
                after: timeout,
            });
        }
    };
    Ok(Output {
        status,
        stdout: out_rx.recv_timeout(PIPE_GRACE).unwrap_or_default(),
        stderr: err_rx.recv_timeout(PIPE_GRACE).unwrap_or_default(),
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

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
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
