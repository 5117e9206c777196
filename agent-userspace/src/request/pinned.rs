//! The one snapshot a request is decided under. It is taken when the
//! request's head is complete, and every later stage (action matching, the
//! decision, the credential choice, enrichment, cost accounting and the
//! record) reads it, so a reload in the middle of a request cannot decide
//! under one generation and pick credentials under another.
use std::sync::Arc;

use cordon_connectors::ConnectorSet;
use cordon_policy::PolicySet;

/// Where snapshots come from: the policy and connectors in force, and the
/// run state their decisions feed.
pub trait Snapshots: Send + Sync {
    /// The snapshot a request is decided under.
    fn pin(&self) -> Pinned;
    /// Adds metered model spend to a run, for its envelope.
    fn add_cost(&self, run: &str, usd: f64);
}

#[derive(Clone)]
pub struct Pinned {
    /// `None` until a valid policy has loaded (then everything is denied).
    pub policy: Option<Arc<PolicySet>>,
    pub connectors: Arc<ConnectorSet>,
    version: Arc<str>,
}

impl Pinned {
    pub fn new(policy: Option<Arc<PolicySet>>, connectors: Arc<ConnectorSet>) -> Pinned {
        let version = policy
            .as_ref()
            .map_or_else(|| Arc::from("none"), |p| p.version_shared());
        Pinned {
            policy,
            connectors,
            version,
        }
    }

    /// The policy generation, as records name it.
    pub fn version(&self) -> &Arc<str> {
        &self.version
    }
}

#[cfg(test)]
impl Pinned {
    /// A snapshot of one policy file (`bot.toml`) and one connector file
    /// (`<name>.toml`), loaded the way the daemon loads them, for unit tests
    /// of the stages that read a snapshot.
    pub fn from_texts(policy: &str, connector_name: &str, connector: &str) -> Pinned {
        let dir = tempfile::tempdir().expect("a temporary policy directory");
        std::fs::write(dir.path().join("bot.toml"), policy).expect("the policy file written");
        let policy = PolicySet::load_dir(dir.path()).expect("the test policy loads");
        let file = format!("{connector_name}.toml").into();
        let connectors = ConnectorSet::from_sources(vec![(file, connector.to_string())])
            .expect("the test connector loads");
        Pinned::new(Some(Arc::new(policy)), Arc::new(connectors))
    }
}
