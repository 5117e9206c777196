//! Builds the eBPF programs (agent-ebpf) with the pinned nightly and
//! bpf-linker, and leaves the object in OUT_DIR for include_bytes_aligned!.
use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::Context;
use aya_build::{Package, Toolchain};

/// Keep in sync with xtask/src/toolchain.rs (EBPF_TOOLCHAIN).
const EBPF_TOOLCHAIN: &str = "nightly-2026-10-29";

/// PATH with `tools` first, unless it is already there. `cargo xtask setup`
/// installs bpf-linker into the workspace's `.tools/bin`; without this a
/// plain `cargo build` fails with "linker `bpf-linker` not found" until the
/// user puts that directory on PATH by hand.
fn path_with_tools(tools: &Path, path: Option<std::ffi::OsString>) -> std::ffi::OsString {
    let mut parts: Vec<PathBuf> = path
        .as_deref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    if !parts.iter().any(|p| p == tools) {
        parts.insert(0, tools.to_path_buf());
    }
    // Joining fails only for a tools path containing ':', which a checkout
    // cannot usefully have; keep PATH as it was then.
    std::env::join_paths(&parts).unwrap_or_else(|_| path.unwrap_or_default())
}

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent-ebpf");
    println!("cargo:rerun-if-changed={root}/src");
    println!("cargo:rerun-if-changed=../agent-common/src");
    println!("cargo:rerun-if-env-changed=PATH");
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin");
    if tools.join("bpf-linker").exists() {
        let path = path_with_tools(&tools, std::env::var_os("PATH"));
        // SAFETY: the build script is single-threaded here; nothing reads the
        // environment concurrently. aya-build's cargo inherits this PATH.
        unsafe { std::env::set_var("PATH", path) };
    }
    // aya-build builds under OUT_DIR, which differs for every profile and
    // for clippy: a test run built the programs from scratch three times
    // (clippy, build, test; `-Z build-std=core`, about 40 s each). The
    // object does not depend on the profile (always `--release` for the
    // BPF target, the same flags), so one directory serves them all, the
    // inner cargo deciding what is stale. A lock keeps builds of different
    // profiles, which cargo may run at once, from copying over each other.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let shared = shared_dir(&out_dir);
    std::fs::create_dir_all(&shared).with_context(|| format!("creating {}", shared.display()))?;
    let lock_path = shared.join(".lock");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    // SAFETY: single-threaded here, as above; aya-build reads OUT_DIR.
    unsafe { std::env::set_var("OUT_DIR", &shared) };
    aya_build::build_ebpf(
        [Package {
            name: "agent-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(EBPF_TOOLCHAIN),
    )?;
    // SAFETY: as above.
    unsafe { std::env::set_var("OUT_DIR", &out_dir) };
    let (from, to) = (shared.join("agent-ebpf"), out_dir.join("agent-ebpf"));
    std::fs::copy(&from, &to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// `<target dir>/ebpf` (or `<target dir>/<triple>/ebpf`): OUT_DIR is
/// `<that>/<profile>/build/<package>-<hash>/out`.
fn shared_dir(out_dir: &Path) -> PathBuf {
    match out_dir.ancestors().nth(4) {
        Some(target) => target.join("ebpf"),
        None => out_dir.join("ebpf"),
    }
}
