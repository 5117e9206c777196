//! Every path a daemon uses, derived from one namespace so several daemons
//! (tests) never collide: state dir, control socket, database, CA, bpffs
//! pins and the cgroup parent's name.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const HOST_STATE_DIR: &str = "/var/lib/cordon";
pub const HOST_RUN_DIR: &str = "/run/cordon";
pub const HOST_CONFIG: &str = "/etc/cordon/cordon.toml";
pub const HOST_POLICIES: &str = "/etc/cordon/policies";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Root-only (0700): database, CA key, vault key.
    pub state_dir: PathBuf,
    /// World-traversable: control socket and the agents' CA bundle.
    pub run_dir: PathBuf,
    pub socket: PathBuf,
    pub db: PathBuf,
    /// The audit trail's write-ahead log, beside the database.
    pub audit_wal: PathBuf,
    /// Kill marks (`daemon/kill_marks.rs`), beside the database.
    pub kill_marks: PathBuf,
    pub ca_dir: PathBuf,
    /// Name under /sys/fs/bpf and of the parent cgroup.
    pub namespace: String,
    pub cgroup_parent: String,
}

impl Paths {
    /// The host-wide install.
    pub fn host() -> Paths {
        Paths::build(
            PathBuf::from(HOST_STATE_DIR),
            PathBuf::from(HOST_RUN_DIR),
            "cordon".into(),
        )
    }

    /// A self-contained namespace rooted at `dir` (tests, side-by-side daemons).
    pub fn for_state_dir(dir: &Path) -> Paths {
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
        let ns = format!("cordon-{}", &hex::encode(digest)[..10]);
        Paths::build(abs.clone(), abs.join("run"), ns)
    }

    fn build(state_dir: PathBuf, run_dir: PathBuf, namespace: String) -> Paths {
        Paths {
            socket: run_dir.join("cordon.sock"),
            db: state_dir.join("cordon.redb"),
            audit_wal: state_dir.join("audit.wal"),
            kill_marks: state_dir.join("kills.json"),
            ca_dir: state_dir.join("ca"),
            cgroup_parent: namespace.clone(),
            namespace,
            state_dir,
            run_dir,
        }
    }

    /// CA bundle (system roots + Cordon CA) that agents are pointed at.
    pub fn agent_ca_bundle(&self) -> PathBuf {
        self.run_dir.join("agent-ca-bundle.pem")
    }

    /// The Cordon CA certificate alone, readable by agents.
    pub fn agent_ca_cert(&self) -> PathBuf {
        self.run_dir.join("cordon-ca.pem")
    }

    pub fn pin_dir(&self) -> PathBuf {
        crate::bpf::bpffs::pin_dir(&self.namespace)
    }

    /// A contained instance's private temp dir: `<tmp>/<namespace>-<cgroup id>`.
    pub fn agent_tmp(&self, cgroup_id: u64) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{cgroup_id}", self.namespace))
    }

    /// Whether `name` (a file name in the temp dir) is one of this
    /// namespace's [`agent_tmp`](Self::agent_tmp) dirs. Another daemon's
    /// (`cordon-0a1b…-7`) never matches the host's `cordon-<id>`.
    pub fn is_agent_tmp_name(&self, name: &str) -> bool {
        name.strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Resolution used by every client command: `--state-dir` (or
    /// CORDON_STATE_DIR, which clap folds in) wins, else the host paths.
    pub fn resolve(state_dir: Option<&Path>) -> Paths {
        match state_dir {
            Some(d) => Paths::for_state_dir(d),
            None => Paths::host(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_state_dirs_get_disjoint_namespaces() {
        let a = Paths::for_state_dir(Path::new("/tmp/a"));
        let b = Paths::for_state_dir(Path::new("/tmp/b"));
        assert_ne!(a.namespace, b.namespace);
        assert_ne!(a.socket, b.socket);
        assert_ne!(a.pin_dir(), b.pin_dir());
        assert!(a.socket.starts_with("/tmp/a"));
    }

    #[test]
    fn host_paths_follow_the_documented_layout() {
        let h = Paths::host();
        assert_eq!(h.socket, PathBuf::from("/run/cordon/cordon.sock"));
        assert_eq!(h.cgroup_parent, "cordon");
        assert!(h.db.starts_with("/var/lib/cordon"));
    }

    #[test]
    fn agent_tmp_names_are_recognised_only_for_their_own_namespace() {
        let host = Paths::host();
        let test = Paths::for_state_dir(Path::new("/tmp/a"));
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_string();
        assert!(host.is_agent_tmp_name(&name(host.agent_tmp(4711))));
        assert!(test.is_agent_tmp_name(&name(test.agent_tmp(4711))));
        assert!(!host.is_agent_tmp_name(&name(test.agent_tmp(4711))));
        assert!(!test.is_agent_tmp_name(&name(host.agent_tmp(4711))));
        for other in ["cordon", "cordon-", "cordon-12a", "cordon-1-2", "cordonx-1"] {
            assert!(!host.is_agent_tmp_name(other), "{other}");
        }
    }
}
