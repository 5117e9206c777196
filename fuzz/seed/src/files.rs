//! The TOML files the project ships.
use std::path::Path;

/// Every `*.toml` under `dir` (one level down too, unless `flat`).
pub fn toml_under(dir: &Path, flat: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !flat {
            out.extend(toml_under(&path, true));
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
            );
        }
    }
    out
}
