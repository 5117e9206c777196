//! cargo-fuzz and the corpora it runs on: the targets it lists, the command
//! with the pinned nightly and the project's tools, and the seeding of empty
//! corpora from the test fixtures.
use std::{ffi::OsString, path::Path, process::Command};

use anyhow::Context;

use crate::{
    sys::{output, path_with_tools, run as exec, workspace_root},
    toolchain::EBPF_TOOLCHAIN,
};

/// Seeds every empty corpus (all of them with `reseed`) from the fixtures.
pub(crate) fn seed(targets: &[&String], reseed: bool) -> anyhow::Result<()> {
    let root = workspace_root();
    let corpus = |t: &str| root.join("fuzz/corpus").join(t);
    let empty = |dir: &Path| std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
    let wanted: Vec<&String> = targets
        .iter()
        .copied()
        .filter(|t| reseed || empty(&corpus(t)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let seeds = root.join("fuzz/target/seeds");
    exec(
        fuzz_env(&mut Command::new("cargo"))
            .args([&toolchain_arg(), "run", "--release", "--manifest-path"])
            .arg(root.join("fuzz/Cargo.toml"))
            .args(["-p", "cordon-fuzz-seed", "--"])
            .arg(&root)
            .arg(&seeds),
    )?;
    for t in wanted {
        copy_dir(&seeds.join(t.as_str()), &corpus(t))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(()); // the seeder has nothing for this target
    };
    for entry in entries {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

pub(crate) fn targets() -> anyhow::Result<Vec<String>> {
    let listed = output(cargo_fuzz().arg("list")).context("`cargo fuzz list` failed")?;
    Ok(listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// How the targets are built, and therefore run: `cargo fuzz run` builds first, and rebuilds
/// everything when the flags differ from the last build's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Build {
    /// `cargo xtask fuzz`'s long runs: optimised, with AddressSanitizer, in `fuzz/target`.
    Long,
    /// `cargo xtask test`'s smoke runs: optimised, without a sanitizer, in a target directory
    /// of their own (so the two builds do not undo each other). The fuzzed crates hold no
    /// `unsafe`, and a smoke run's work is replaying the corpus the long runs grew under
    /// AddressSanitizer; panics, hangs and memory blow-ups are caught either way. Without it
    /// the build takes about a quarter less CPU (368 s against 497 s, measured one after the
    /// other on the 2-core VM), and in the suite that build, niced beside everything else, was
    /// what the suite waited for last.
    Smoke,
}

impl Build {
    /// The flags `cargo fuzz build`, `run` and `cmin` take for this build.
    pub(crate) fn args(self) -> Vec<OsString> {
        let mut args = vec![OsString::from("-O")];
        if self == Build::Smoke {
            args.extend(["-s", "none", "--target-dir"].map(OsString::from));
            args.push(workspace_root().join("target/fuzz-smoke-build").into());
        }
        args
    }
}

/// `+nightly-…` for rustup's `cargo` proxy: the fuzz build needs the
/// nightly's sanitizer support; it is the pinned one the eBPF build uses.
pub(crate) fn toolchain_arg() -> String {
    format!("+{EBPF_TOOLCHAIN}")
}

pub(crate) fn cargo_fuzz() -> Command {
    let mut c = Command::new("cargo");
    c.args([&toolchain_arg(), "fuzz"]);
    fuzz_env(&mut c);
    c
}

/// Run from the workspace root (cargo-fuzz finds `fuzz/` there), with the
/// project's tools on PATH and nothing of the outer cargo's toolchain choice.
pub(crate) fn fuzz_env(c: &mut Command) -> &mut Command {
    c.current_dir(workspace_root())
        .env("PATH", path_with_tools())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTFLAGS")
}
