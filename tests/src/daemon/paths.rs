//! Where the binary under test and the workspace's shipped policies are.

use std::path::PathBuf;

/// Env var `cargo xtask test` sets to the `cordon` binary it built.
pub const CORDON_BIN_ENV: &str = "CORDON_BIN";

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), |p| p.to_path_buf())
}

/// `$CORDON_BIN`, else `<workspace>/target/debug/cordon`.
pub fn cordon_bin() -> PathBuf {
    std::env::var_os(CORDON_BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/cordon"))
}
