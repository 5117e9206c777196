use which::which;

/// Rebuild when bpf-linker changes: cargo does not track it otherwise.
fn main() {
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
