//! `cordon install`: puts the daemon on a host (or into a scratch root for
//! an image) as a hardened systemd service. Every step is idempotent and
//! reports what it did; operator files (config, policies) are never
//! overwritten.
pub mod defaults;
pub mod error;
pub mod fsops;
pub mod layout;
pub mod manifest;
pub mod system;
pub mod uninstall;
pub mod unit;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use error::InstallError;
use fsops::Change;
use layout::{GROUP, Layout, UNIT_NAME};
use manifest::Manifest;

pub struct InstallOptions {
    /// `/` for the running host, else a scratch root.
    pub root: PathBuf,
    /// The binary to install (normally the running executable).
    pub binary_source: PathBuf,
    /// Where the example policies come from when none are installed yet.
    pub policies_from: Option<PathBuf>,
}

/// Collects the step lines and prints each as it happens, so a failure
/// still shows everything done before it.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub echo: bool,
}

impl Report {
    pub fn printing() -> Report {
        Report {
            lines: Vec::new(),
            echo: true,
        }
    }

    pub fn step(&mut self, line: impl Into<String>) {
        let line = line.into();
        if self.echo {
            // A closed stdout (`| head`) must not abort an uninstall halfway.
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "  {line}");
        }
        self.lines.push(line);
    }
}

/// Makes `prefix` absolute and canonical (creating a missing scratch root
/// when `create`): `/` must be recognised however it is spelled, since only
/// then are the host's groups and systemd touched.
pub fn resolve_root(prefix: &Path, create: bool) -> Result<PathBuf, InstallError> {
    let abs = std::path::absolute(prefix).map_err(InstallError::io("resolving", prefix))?;
    if create && !abs.exists() {
        std::fs::create_dir_all(&abs).map_err(InstallError::io("creating the root", &abs))?;
    }
    let canon = abs
        .canonicalize()
        .map_err(InstallError::io("resolving", &abs))?;
    if !canon.is_dir() {
        return Err(InstallError::Prefix {
            prefix: prefix.into(),
            reason: "not a directory".into(),
        });
    }
    Ok(canon)
}

pub fn require_root_for_host(layout: &Layout, what: &'static str) -> Result<(), InstallError> {
    if layout.is_host() && !nix::unistd::geteuid().is_root() {
        return Err(InstallError::NotRoot { what });
    }
    Ok(())
}

pub fn install(opts: &InstallOptions, report: &mut Report) -> Result<(), InstallError> {
    let l = Layout::new(&opts.root);
    require_root_for_host(&l, "cordon install")?;
    let mut created = BTreeSet::new();
    let mut record = Manifest::default();
    let result = install_steps(&l, opts, &mut created, &mut record, report);
    // Even a failed install records what it created, so a later
    // `uninstall --purge` can take it away again.
    record.add_dirs(&l, &created);
    if l.state_dir().is_dir() {
        let mut m = Manifest::load(&l.manifest()).unwrap_or_default();
        m.merge(record);
        m.save(&l.manifest())?;
    }
    result
}

fn install_steps(
    l: &Layout,
    opts: &InstallOptions,
    created: &mut BTreeSet<PathBuf>,
    record: &mut Manifest,
    report: &mut Report,
) -> Result<(), InstallError> {
    let state = l.state_dir();
    let new = fsops::ensure_own_dir(&state, 0o700, created)?;
    report.step(format!(
        "state directory {} (0700): {}",
        state.display(),
        if new { "created" } else { "present" }
    ));

    fsops::ensure_own_dir(&l.config_dir(), 0o755, created)?;
    let change =
        fsops::write_if_absent(&l.config_file(), defaults::config_toml().as_bytes(), 0o644)?;
    report.step(match change {
        Change::Created => format!("config {}: written", l.config_file().display()),
        _ => format!(
            "config {}: kept the existing file",
            l.config_file().display()
        ),
    });

    install_policies(l, opts.policies_from.as_deref(), report)?;
    let binary_changed = install_binary(l, &opts.binary_source, created, report)?;

    fsops::ensure_dir(&l.unit_dropin_dir(), created)?;
    let unit_change = fsops::write_if_changed(&l.unit_file(), unit::render().as_bytes(), 0o644)?;
    report.step(format!(
        "unit {}: {} (overrides go in {})",
        l.unit_file().display(),
        change_word(unit_change),
        l.unit_dropin_dir().display()
    ));

    install_group(l, created, record, report)?;

    let ca_dir = l.ca_dir();
    let had_ca = ca_dir.join(cordon_tls::CA_CERT_FILE).exists();
    cordon_tls::CertAuthority::load_or_create(&ca_dir).map_err(|source| InstallError::Ca {
        dir: ca_dir.clone(),
        source,
    })?;
    report.step(format!(
        "CA {}: {}",
        ca_dir.display(),
        if had_ca {
            "present"
        } else {
            "created (key 0600)"
        }
    ));

    let restart = binary_changed || unit_change != Change::Unchanged;
    start_service(l, restart, report)
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::Created => "written",
        Change::Updated => "updated",
        Change::Unchanged => "unchanged",
    }
}

/// The repository's `policies/` next to where `cordon install` runs (the
/// Vagrant box, a checkout), else the one this binary was built from.
fn policy_source_candidates() -> Vec<PathBuf> {
    let mut c = vec![PathBuf::from("policies")];
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies"));
    c
}

fn install_policies(
    l: &Layout,
    from: Option<&Path>,
    report: &mut Report,
) -> Result<(), InstallError> {
    let dst = l.policies();
    if std::fs::symlink_metadata(&dst).is_ok() {
        report.step(format!(
            "policies {}: kept the existing directory",
            dst.display()
        ));
        return Ok(());
    }
    let src = match from {
        Some(p) => p.to_path_buf(),
        None => {
            let looked = policy_source_candidates();
            looked
                .iter()
                .find(|p| p.join("connectors").is_dir())
                .cloned()
                .ok_or(InstallError::NoPolicySource { looked })?
        }
    };
    // The daemon would deny everything with a broken policy; refuse now,
    // with the file and line, rather than install it.
    cordon_policy::PolicySet::load_dir(&src)?;
    let connectors = src.join("connectors");
    if connectors.is_dir() {
        cordon_connectors::ConnectorSet::load_dir(&connectors)?;
    }
    let n = fsops::copy_tree(&src, &dst)?;
    report.step(format!(
        "policies {}: copied {n} files from {}",
        dst.display(),
        src.display()
    ));
    Ok(())
}

/// Returns whether the installed binary changed.
fn install_binary(
    l: &Layout,
    src: &Path,
    created: &mut BTreeSet<PathBuf>,
    report: &mut Report,
) -> Result<bool, InstallError> {
    let dst = l.binary();
    if let Some(parent) = dst.parent() {
        fsops::ensure_dir(parent, created)?;
    }
    let same_file = match (src.canonicalize(), dst.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file {
        report.step(format!("binary {}: already the running one", dst.display()));
        return Ok(false);
    }
    let bytes = std::fs::read(src).map_err(InstallError::io("reading the binary", src))?;
    let change = fsops::write_if_changed(&dst, &bytes, 0o755)?;
    report.step(format!(
        "binary {}: {} from {}",
        dst.display(),
        change_word(change),
        src.display()
    ));
    Ok(change != Change::Unchanged)
}

fn install_group(
    l: &Layout,
    created: &mut BTreeSet<PathBuf>,
    record: &mut Manifest,
    report: &mut Report,
) -> Result<(), InstallError> {
    let sysusers = l.sysusers_file();
    if let Some(parent) = sysusers.parent() {
        fsops::ensure_dir(parent, created)?;
    }
    let text = format!("# Members may use the Cordon control socket.\ng {GROUP} - -\n");
    fsops::write_if_changed(&sysusers, text.as_bytes(), 0o644)?;
    if !l.is_host() {
        report.step(format!(
            "group {GROUP}: not created (scratch root; the host's groups are left alone), \
             declared in {} for systemd-sysusers on the target",
            sysusers.display()
        ));
        return Ok(());
    }
    if system::group_exists(GROUP)? {
        report.step(format!("group {GROUP}: present"));
    } else {
        system::run("groupadd", &["--system", GROUP])?;
        record.groups.insert(GROUP.into());
        report.step(format!(
            "group {GROUP}: created (add operators with `usermod -aG {GROUP} USER`)"
        ));
    }
    Ok(())
}

fn start_service(l: &Layout, restart: bool, report: &mut Report) -> Result<(), InstallError> {
    if !l.is_host() {
        report.step(format!(
            "service: not started (installed into the scratch root {})",
            l.root().display()
        ));
        return Ok(());
    }
    if !system::systemd_running() {
        report.step(
            "service: not started (systemd is not PID 1 here); run \
             `cordon daemon --config /etc/cordon/cordon.toml` under your supervisor",
        );
        return Ok(());
    }
    system::systemctl(&["daemon-reload"])?;
    let was_active = system::unit_is_active(UNIT_NAME);
    system::systemctl(&["enable", "--now", UNIT_NAME])?;
    if was_active && restart {
        system::systemctl(&["restart", UNIT_NAME])?;
        report.step(format!(
            "service {UNIT_NAME}: enabled, restarted on the new binary/unit"
        ));
    } else if was_active {
        report.step(format!("service {UNIT_NAME}: enabled, already running"));
    } else {
        report.step(format!("service {UNIT_NAME}: enabled and started"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
