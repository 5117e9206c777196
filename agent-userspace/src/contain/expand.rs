//! Globs in containment paths name what exists at launch. A path that
//! appears later is covered only by a literal (non-glob) entry.
use std::path::PathBuf;

/// Cap on the matches of one pattern, so a pattern like `/*/*/*` cannot
/// turn a launch into a filesystem walk.
const MAX_MATCHES: usize = 1024;

pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    match glob::glob_with(pattern, opts) {
        // Unreadable directories are skipped: what cannot be listed here
        // is matched by no entry, which only ever narrows what is allowed.
        Ok(paths) => paths.flatten().take(MAX_MATCHES).collect(),
        Err(e) => {
            tracing::warn!(pattern, "containment glob does not parse: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn star_does_not_cross_a_slash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/.env"), "").unwrap();
        std::fs::write(dir.path().join("a/b/.env"), "").unwrap();
        let found = super::expand(&format!("{}/*/.env", dir.path().display()));
        assert_eq!(found, vec![dir.path().join("a/.env")]);
    }
}
