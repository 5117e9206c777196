//! Which agent instance a credential belongs to.

use std::sync::Arc;

/// One run of one agent (`cordon run` makes one). Credentials minted for
/// an instance are cached under it and revoked when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    pub agent: Arc<str>,
    pub instance: Arc<str>,
}

impl InstanceId {
    pub fn new(agent: &str, instance: &str) -> InstanceId {
        InstanceId {
            agent: Arc::from(agent),
            instance: Arc::from(instance),
        }
    }

    /// Whether `agent` is in this instance's chain (`lead/bot` runs under
    /// `lead` and `bot`): a cut of `agent`'s connector covers it, as the
    /// proxy's connector check does.
    pub fn runs_under(&self, agent: &str) -> bool {
        self.agent.split('/').any(|a| a == agent)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.agent, self.instance)
    }
}
