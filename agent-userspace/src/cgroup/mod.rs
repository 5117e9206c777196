//! Cordon's managed cgroup tree:
//! `<cgroup2>/<parent>/<agent>/<instance>[/<sub-agent>/<instance>...]`.
//! Programs attach once at the parent; everything below inherits them.
pub mod freeze;
pub mod mount;
pub mod tree;

#[cfg(test)]
mod reaper_race_tests;

use std::path::PathBuf;

pub use tree::{AgentPath, CgroupTree};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no cgroup2 filesystem is mounted (looked in /proc/self/mountinfo); Cordon needs cgroup v2"
    )]
    NoCgroup2,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid agent name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error(
        "{path}: the kernel did not confirm the freeze within {waited_ms} ms (cgroup.events still says frozen 0)"
    )]
    FreezeTimeout { path: PathBuf, waited_ms: u64 },
}

impl CgroupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Agent names become directory names and appear in policies and audit
/// records, so they are kept to a small, unambiguous alphabet.
pub fn validate_agent_name(name: &str) -> Result<(), CgroupError> {
    let bad = |why| {
        Err(CgroupError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// One run of an agent: its place in the tree is unique while it lives
/// (`a/i1/b/i2`, the same text as `rel_path`). Built directly: it is
/// asked for on every request.
pub fn run_id(agent: &AgentPath) -> String {
    let len = agent
        .chain
        .iter()
        .chain(&agent.instances)
        .map(|s| s.len() + 1);
    let mut id = String::with_capacity(len.sum());
    for (i, a) in agent.chain.iter().enumerate() {
        if i > 0 {
            id.push('/');
        }
        id.push_str(a);
        if let Some(inst) = agent.instances.get(i) {
            id.push('/');
            id.push_str(inst);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::validate_agent_name;

    #[test]
    fn a_run_id_is_the_agents_place_below_the_parent() {
        let p = super::AgentPath {
            chain: vec!["orch".into(), "sub".into()],
            instances: vec!["i1".into(), "i2".into()],
        };
        assert_eq!(super::run_id(&p), p.rel_path().display().to_string());
        assert_eq!(super::run_id(&p), "orch/i1/sub/i2");
    }

    #[test]
    fn agent_names_with_path_or_shell_characters_are_rejected() {
        for bad in [
            "",
            "../x",
            "a/b",
            "a b",
            "-x",
            ".hidden",
            "x;rm",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(validate_agent_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["deploy-bot", "a", "researcher_2", "v1.2"] {
            assert!(validate_agent_name(good).is_ok(), "{good:?} rejected");
        }
    }
}
