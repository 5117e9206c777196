//! Test credentials: random real-looking tokens, storing them through `cordon vault set`, and
//! finding any piece of one in text an agent, an auditor or an operator got to see.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

use crate::daemon::{CLIENT_TIMEOUT, Daemon};
use crate::error::{Error, IoContext, Result};
use crate::process::{describe, wait_child};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of the secret fragments [`leaked_fragment`] looks for: long enough that random text
/// never contains one by chance, short enough to catch a truncated or split echo.
pub const FRAGMENT_LEN: usize = 10;

/// `n` random ASCII letters and digits from the kernel's CSPRNG.
pub fn random_alnum(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
        .iter()
        .map(|b| char::from(ALNUM[usize::from(*b) % ALNUM.len()]))
        .collect()
}

/// A token shaped like a GitHub personal access token: `ghp_` and 36 letters and digits.
pub fn github_token() -> String {
    format!("ghp_{}", random_alnum(36))
}

/// A token shaped like a Stripe test secret key.
pub fn stripe_key() -> String {
    format!("sk_test_{}", random_alnum(32))
}

/// The first [`FRAGMENT_LEN`]-byte piece of `secret` that occurs in `haystack`, if any (the whole
/// secret when it is shorter).
pub fn leaked_fragment(haystack: &[u8], secret: &str) -> Option<String> {
    let s = secret.as_bytes();
    let len = FRAGMENT_LEN.min(s.len());
    s.windows(len)
        .find(|w| haystack.windows(w.len()).any(|h| h == *w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

/// Panics naming `what` and the fragment when any piece of any of `secrets` is in `haystack`.
pub fn assert_no_leak(what: &str, haystack: &[u8], secrets: &[&str]) {
    for secret in secrets {
        if let Some(piece) = leaked_fragment(haystack, secret) {
            panic!(
                "{what} contains {piece:?}, a piece of a real secret:\n{}",
                String::from_utf8_lossy(haystack)
            );
        }
    }
}

/// `cordon vault set NAME --from-stdin --kind KIND` with `value` written to its stdin.
pub fn vault_set_stdin(daemon: &Daemon, name: &str, kind: &str, value: &str) -> Result<Output> {
    let mut cmd = daemon.cordon_command(&["vault", "set", name, "--from-stdin", "--kind", kind]);
    run_with_stdin(&mut cmd, value.as_bytes())
}

/// `cordon vault set NAME --from-file F --kind KIND`, `F` a private temporary file.
pub fn vault_set_file(daemon: &Daemon, name: &str, kind: &str, value: &str) -> Result<Output> {
    let mut file = tempfile::NamedTempFile::new().ctx(|| "create secret file".into())?;
    file.write_all(value.as_bytes())
        .ctx(|| "write secret file".into())?;
    let path = file
        .path()
        .to_str()
        .ok_or_else(|| Error::Setup(format!("non UTF-8 temp path {}", file.path().display())))?;
    daemon.cordon(&["vault", "set", name, "--from-file", path, "--kind", kind])
}

/// Like [`vault_set_stdin`] but a failure is an error carrying the command's output.
pub fn store(daemon: &Daemon, name: &str, value: &str) -> Result<()> {
    let out = vault_set_stdin(daemon, name, "token", value)?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        command: format!("cordon vault set {name}"),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Result<Output> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ctx(|| format!("spawn `{what}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .ctx(|| format!("write stdin of `{what}`"))?;
    }
    let status = wait_child(&mut child, CLIENT_TIMEOUT)?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Timeout {
            what,
            after: CLIENT_TIMEOUT,
        });
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_alnum_and_differ() {
        let a = github_token();
        let b = github_token();
        assert_eq!(a.len(), 40);
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_piece_of_the_secret_is_found_anywhere() {
        let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(leaked_fragment(b"nothing here", secret), None);
        assert_eq!(
            leaked_fragment(b"x: Bearer [REDACTED] ...mnopqrstuv...", secret).as_deref(),
            Some("mnopqrstuv")
        );
        assert!(leaked_fragment(secret.as_bytes(), secret).is_some());
        // Pieces shorter than FRAGMENT_LEN (e.g. the well-known prefix) are not reported.
        assert_eq!(leaked_fragment(b"ghp_abcde", secret), None);
    }
}
