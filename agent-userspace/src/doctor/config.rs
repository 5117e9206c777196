//! Config checks: the daemon configuration resolves as the daemon would
//! resolve it, and the policy directory passes `cordon policy check`.
use std::path::PathBuf;

use super::report::Check;
use crate::config::{DaemonConfig, DaemonFlags};

const SECTION: &str = "config";

/// The resolved configuration, when it resolves, so the daemon checks use
/// the same paths the daemon does.
pub fn checks(
    config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    policies: Option<PathBuf>,
) -> (Vec<Check>, Option<DaemonConfig>) {
    let flags = DaemonFlags {
        config,
        state_dir,
        policies,
        ..DaemonFlags::default()
    };
    let cfg = match DaemonConfig::resolve(flags) {
        Ok(c) => c,
        Err(e) => {
            return (
                vec![Check::fail(
                    SECTION,
                    "config",
                    e.to_string(),
                    "fix the file and line named; the daemon refuses to start with it",
                )],
                None,
            );
        }
    };
    let source = match &cfg.config_file {
        Some(p) => format!("{} parses", p.display()),
        None => "no config file: built-in defaults".to_string(),
    };
    let checks = vec![
        Check::pass(SECTION, "config", source),
        policies_check(&cfg.policies),
    ];
    (checks, Some(cfg))
}

/// The same load `cordon policy check` does.
fn policies_check(dir: &std::path::Path) -> Check {
    match cordon_policy::PolicySet::load_dir(dir) {
        Ok(set) => Check::pass(
            SECTION,
            "policies",
            format!("{}: version {}", dir.display(), set.version()),
        ),
        Err(e) => Check::fail(
            SECTION,
            "policies",
            format!("{}: {e}", dir.display()),
            format!(
                "fix the file and line named, check with `cordon policy check {}`, then `cordon policy reload`",
                dir.display()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    #[test]
    fn a_policy_directory_with_a_broken_file_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), "agents = [\n").unwrap();
        let state = tempfile::tempdir().unwrap();
        let (checks, cfg) = checks(None, Some(state.path().into()), Some(dir.path().into()));
        assert!(cfg.is_some());
        assert_eq!(checks[1].status, Status::Fail, "{checks:?}");
        assert!(checks[1].detail.contains("bad.toml"), "{checks:?}");
    }

    #[test]
    fn a_valid_policy_directory_passes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ok.toml"),
            "agents = [\"*\"]\ndefault = \"deny\"\n",
        )
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let (checks, _) = checks(None, Some(state.path().into()), Some(dir.path().into()));
        assert_eq!(checks[1].status, Status::Pass, "{checks:?}");
    }

    #[test]
    fn an_unreadable_config_file_fails() {
        let (checks, cfg) = checks(Some("/nonexistent/cordon.toml".into()), None, None);
        assert!(cfg.is_none());
        assert_eq!(checks[0].status, Status::Fail);
    }
}
