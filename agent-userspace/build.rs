//! Builds the eBPF programs (agent-ebpf) with the pinned nightly and
//! bpf-linker, and leaves the object in OUT_DIR for include_bytes_aligned!.
use aya_build::{Package, Toolchain};

/// Keep in sync with xtask/src/toolchain.rs (EBPF_TOOLCHAIN).
const EBPF_TOOLCHAIN: &str = "nightly-2026-10-29";

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent-ebpf");
    println!("cargo:rerun-if-changed={root}/src");
    println!("cargo:rerun-if-changed=../agent-common/src");
    aya_build::build_ebpf(
        [Package {
            name: "agent-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(EBPF_TOOLCHAIN),
    )
}
