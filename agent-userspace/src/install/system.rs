//! The host's side of an install: the group database and systemd. Only
//! ever used when installing onto the running system, never a scratch root.
use std::{path::Path, process::Command};

use super::error::InstallError;

/// systemd is PID 1 (sd_booted(3)): this directory exists only then.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Runs a command to completion; a non-zero exit is an error with stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, InstallError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| InstallError::Command {
            command: command.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(InstallError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn group_exists(name: &str) -> Result<bool, InstallError> {
    // getent consults NSS (LDAP, sssd), not just /etc/group; exit 2 is
    // "not found", anything else non-zero is a real failure.
    let out = Command::new("getent")
        .args(["group", name])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| InstallError::Command {
            command: format!("getent group {name}"),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(2) => Ok(false),
        _ => Err(InstallError::Command {
            command: format!("getent group {name}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

pub fn systemctl(args: &[&str]) -> Result<String, InstallError> {
    run("systemctl", args)
}

/// `systemctl is-active` prints the state and exits non-zero unless
/// active; only the state matters here.
pub fn unit_is_active(unit: &str) -> bool {
    Command::new("systemctl")
        .args(["is-active", "--quiet", unit])
        .status()
        .is_ok_and(|s| s.success())
}
