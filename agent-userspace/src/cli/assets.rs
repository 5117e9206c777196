//! `cordon generate-assets --out DIR` (hidden): the files the Debian package
//! ships beside the binary, made from the binary's own definitions so they
//! never drift from it: man pages (clap_mangen), bash, zsh and fish
//! completions (clap_complete), the packaged systemd unit, the default
//! configuration and the sysusers declaration of the group.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::args::Cli;
use crate::install::{defaults, layout::GROUP, unit};

#[derive(Args, Debug)]
pub struct AssetsArgs {
    /// Directory to write into (created).
    #[arg(long)]
    pub out: PathBuf,
}

/// (shell, file name its loader looks for).
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "cordon"),
    (Shell::Zsh, "_cordon"),
    (Shell::Fish, "cordon.fish"),
];

pub fn run(a: &AssetsArgs) -> anyhow::Result<ExitCode> {
    let written = generate(&a.out)?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn generate(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    for d in [out, &man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man).context("writing man pages")?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    for (shell, name) in COMPLETIONS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "cordon", &mut buf);
        let p = completions.join(name);
        std::fs::write(&p, buf).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
    }
    let files = [
        ("cordon.service", unit::render_for(unit::Origin::Package)),
        ("cordon.toml", defaults::config_toml()),
        (
            "sysusers.conf",
            format!("# Members may use the Cordon control socket.\ng {GROUP} - -\n"),
        ),
    ];
    for (name, text) in files {
        let p = out.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_gets_a_man_page_and_every_shell_a_completion() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "cordon.1",
            "cordon-run.1",
            "cordon-doctor.1",
            "cordon-policy-check.1",
            "cordon",
            "_cordon",
            "cordon.fish",
            "cordon.service",
            "cordon.toml",
            "sysusers.conf",
        ] {
            assert!(
                names.contains(&want.to_string()),
                "{want} missing: {names:?}"
            );
        }
        // The probe and this command are internal: no page for either.
        assert!(
            !names
                .iter()
                .any(|n| n.contains("doctor-probe") || n.contains("generate-assets"))
        );
        let page = std::fs::read_to_string(dir.path().join("man/cordon-doctor.1")).unwrap();
        assert!(page.contains("attack"), "{page}");
        let bash = std::fs::read_to_string(dir.path().join("completions/cordon")).unwrap();
        assert!(bash.contains("doctor"));
    }
}
