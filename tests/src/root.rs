//! Privileged tests skip loudly (and countably) instead of passing silently when not root.

use std::io::Write;
use std::path::Path;

/// Environment variable naming a file that collects the names of skipped tests.
pub const SKIP_LOG_ENV: &str = "CORDON_E2E_SKIP_LOG";

/// `true` when running as root. Otherwise prints a banner, records the skip and returns `false`;
/// the caller must then return early.
pub fn require_root(test_name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let bar = "!".repeat(78);
    // Straight to fd 2: `eprintln!` would be swallowed by libtest's capture of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n!! SKIPPED: privileged e2e test {test_name} needs root\n\
         !! (network namespaces, cgroups and eBPF). Run it through `cargo xtask test`,\n\
         !! which runs the suite as root. THIS TEST DID NOT RUN.\n{bar}\n"
    );
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV)
        && let Err(e) = record_skip(Path::new(&path), test_name)
    {
        eprintln!(
            "!! could not record the skip in {}: {e}",
            path.to_string_lossy()
        );
    }
    false
}

/// Append one line naming the skipped test; concurrent appends of short lines do not interleave.
pub(crate) fn record_skip(path: &Path, test_name: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{test_name}\n").as_bytes())
}

/// Returns from the enclosing test when not root, naming the test in the banner.
/// `require_root_or_skip!()` for `()` tests, `require_root_or_skip!(Ok(()))` for `Result` tests.
#[macro_export]
macro_rules! require_root_or_skip {
    () => {
        $crate::require_root_or_skip!(())
    };
    ($ret:expr) => {{
        fn here() {}
        fn name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        let name = name_of(here).trim_end_matches("::here");
        if !$crate::require_root(name) {
            return $ret;
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_appended_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        record_skip(&log, "e2e::a").unwrap();
        record_skip(&log, "e2e::b").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "e2e::a\ne2e::b\n");
    }
}
