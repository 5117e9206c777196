//! `cordon install` and `cordon uninstall`.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Args;

use super::args::Client;
use crate::install::{
    InstallOptions, Report, install, resolve_root,
    uninstall::{UninstallOptions, uninstall},
};

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Install into this root instead of the running system (image builds);
    /// the host's groups, systemd and kernel are then left alone.
    #[arg(long, default_value = "/")]
    pub prefix: PathBuf,
    /// Binary to install as /usr/local/bin/cordon (default: this one).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Example policies to copy to /etc/cordon/policies when it is absent
    /// (default: ./policies, else the checkout this binary was built from).
    #[arg(long)]
    pub policies_from: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// The root given to `cordon install --prefix`.
    #[arg(long, default_value = "/")]
    pub prefix: PathBuf,
    /// Also remove /etc/cordon, the state dir (CA, audit log, vault) and the group.
    #[arg(long)]
    pub purge: bool,
}

pub fn run_install(a: &InstallArgs) -> anyhow::Result<ExitCode> {
    let root = resolve_root(&a.prefix, true)?;
    let binary_source = match &a.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("finding the running executable")?,
    };
    say(&format!("cordon install into {}:", root.display()));
    install(
        &InstallOptions {
            root,
            binary_source,
            policies_from: a.policies_from.clone(),
        },
        &mut Report::printing(),
    )?;
    say("done");
    Ok(ExitCode::SUCCESS)
}

pub fn run_uninstall(a: &UninstallArgs) -> anyhow::Result<ExitCode> {
    let root = resolve_root(&a.prefix, false)?;
    say(&format!("cordon uninstall from {}:", root.display()));
    let host_cleanup =
        || -> anyhow::Result<()> { super::admin::cleanup(&Client { state_dir: None }).map(|_| ()) };
    uninstall(
        &UninstallOptions {
            root,
            purge: a.purge,
        },
        &host_cleanup,
        &mut Report::printing(),
    )?;
    say("done");
    Ok(ExitCode::SUCCESS)
}

/// Like println!, but a closed stdout (`| head`) does not abort the command.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}
