//! Small helpers: the scratch directory, medians, free ports, the fd limit.
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// A scratch directory under /tmp, removed at the end. Readable by the
/// unprivileged users nginx's workers and Squid run as.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("cordon-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Test keys only: every file and directory readable by all.
pub fn open_up(dir: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for e in std::fs::read_dir(dir.join("certs"))?.flatten() {
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(dir.join("certs"), std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Runs a bench-probe loop and reads the JSON line it printed last; a
/// failed loop is an error naming `what`, with the probe's stderr.
pub fn probe_json<T: serde::de::DeserializeOwned>(
    cmd: &mut std::process::Command,
    what: &str,
) -> anyhow::Result<T> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("unreadable probe output {line:?}"))
}
