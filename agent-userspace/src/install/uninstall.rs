//! `cordon uninstall`: stops the service, takes the enforcement out of the
//! kernel, removes what install put on the system. `--purge` also removes
//! configuration, policies, the state dir (CA, audit log, vault) and the
//! directories and group install created. Rerunning reports "absent".
use std::path::{Path, PathBuf};

use super::{
    Report,
    error::InstallError,
    fsops,
    layout::{Layout, UNIT_NAME},
    manifest::Manifest,
    require_root_for_host, system,
};

pub struct UninstallOptions {
    pub root: PathBuf,
    pub purge: bool,
}

/// `kernel_cleanup` detaches the pinned programs and removes the cgroup
/// tree of the host install (`cordon cleanup`); only called for `/`.
pub fn uninstall(
    opts: &UninstallOptions,
    kernel_cleanup: &dyn Fn() -> anyhow::Result<()>,
    report: &mut Report,
) -> Result<(), InstallError> {
    let l = Layout::new(&opts.root);
    require_root_for_host(&l, "cordon uninstall")?;
    let systemd = l.is_host() && system::systemd_running();

    if systemd && l.unit_file().exists() {
        system::systemctl(&["disable", "--now", UNIT_NAME])?;
        report.step(format!("service {UNIT_NAME}: stopped and disabled"));
    } else if systemd {
        report.step(format!("service {UNIT_NAME}: not installed"));
    } else if l.is_host() {
        report.step("service: no systemd here; a running `cordon daemon` must be stopped first");
    }

    if l.is_host() {
        kernel_cleanup().map_err(InstallError::Cleanup)?;
        report.step(
            "kernel state: pinned programs detached, cgroup tree and agents' temp dirs removed",
        );
    } else {
        report.step(
            "kernel state: untouched (scratch root; pins and cgroups belong to the running host)",
        );
    }

    gone(
        report,
        "unit",
        &l.unit_file(),
        fsops::remove_file(&l.unit_file())?,
    );
    let dropins = l.unit_dropin_dir();
    if opts.purge {
        gone(
            report,
            "unit drop-ins",
            &dropins,
            fsops::remove_tree(&dropins)?,
        );
    } else if !fsops::remove_dir_if_empty(&dropins)? && dropins.exists() {
        report.step(format!(
            "unit drop-ins {}: kept (not empty; --purge removes them)",
            dropins.display()
        ));
    }
    if systemd {
        system::systemctl(&["daemon-reload"])?;
    }
    gone(
        report,
        "binary",
        &l.binary(),
        fsops::remove_file(&l.binary())?,
    );
    gone(
        report,
        "run directory (socket, agent CA bundle)",
        &l.run_dir(),
        fsops::remove_tree(&l.run_dir())?,
    );

    if opts.purge {
        purge(&l, report)?;
    } else {
        report.step(format!(
            "kept {} and {} (CA, audit log, vault); --purge removes them",
            l.config_dir().display(),
            l.state_dir().display()
        ));
    }
    Ok(())
}

fn purge(l: &Layout, report: &mut Report) -> Result<(), InstallError> {
    // Read before the state dir (which holds it) goes.
    let manifest = Manifest::load(&l.manifest())?;
    gone(
        report,
        "configuration and policies",
        &l.config_dir(),
        fsops::remove_tree(&l.config_dir())?,
    );
    gone(
        report,
        "state directory",
        &l.state_dir(),
        fsops::remove_tree(&l.state_dir())?,
    );
    gone(
        report,
        "group declaration",
        &l.sysusers_file(),
        fsops::remove_file(&l.sysusers_file())?,
    );
    for g in &manifest.groups {
        if l.is_host() && system::group_exists(g)? {
            system::run("groupdel", &[g])?;
            report.step(format!("group {g}: removed"));
        } else {
            report.step(format!("group {g}: absent"));
        }
    }
    // Deepest first: a parent is empty only once its children are gone.
    let mut dirs: Vec<&PathBuf> = manifest.dirs.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let real = l.at(d);
        if fsops::remove_dir_if_empty(&real)? {
            report.step(format!(
                "directory {}: removed (install created it)",
                real.display()
            ));
        }
    }
    Ok(())
}

fn gone(report: &mut Report, what: &str, path: &Path, removed: bool) {
    report.step(format!(
        "{what} {}: {}",
        path.display(),
        if removed { "removed" } else { "absent" }
    ));
}
