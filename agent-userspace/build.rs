//! Builds the eBPF programs (agent-ebpf) with the pinned nightly and
//! bpf-linker, and leaves the object in OUT_DIR for include_bytes_aligned!.
use std::path::{Path, PathBuf};

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
    aya_build::build_ebpf(
        [Package {
            name: "agent-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(EBPF_TOOLCHAIN),
    )
}
