//! The daemon's view of policy: one generation-pinned snapshot per
//! decision, swapped atomically on reload, and a fail-closed state when no
//! valid policy has ever loaded.
use std::{path::Path, sync::Arc};

use arc_swap::ArcSwapOption;
use cordon_policy::{ActionRequest, Decision, HttpInfo, PolicyError, PolicySet};
use serde_json::{Map, Value};

use crate::cgroup::AgentPath;

pub struct PolicyHandle {
    current: ArcSwapOption<PolicySet>,
}

impl PolicyHandle {
    /// Loads the directory; a broken set at start leaves Cordon denying
    /// everything (and saying why) rather than running unpoliced.
    pub fn load(dir: &Path) -> PolicyHandle {
        let h = PolicyHandle {
            current: ArcSwapOption::from(None),
        };
        match h.reload(dir) {
            Ok(v) => tracing::info!(version = %v, dir = %dir.display(), "policy loaded"),
            Err(e) => {
                tracing::error!("policy not loaded, every action is denied until it is fixed: {e}")
            }
        }
        h
    }

    /// Validates the whole directory before swapping it in; on error the
    /// policy in force stays.
    pub fn reload(&self, dir: &Path) -> Result<String, PolicyError> {
        let set = PolicySet::load_dir(dir)?;
        let v = set.version().to_string();
        self.current.store(Some(Arc::new(set)));
        Ok(v)
    }

    pub fn version(&self) -> String {
        self.current
            .load()
            .as_ref()
            .map(|s| s.version().to_string())
            .unwrap_or_else(|| "none".into())
    }

    pub fn decide(
        &self,
        agent: &AgentPath,
        action: &str,
        params: &Map<String, Value>,
        request: Option<HttpInfo<'_>>,
    ) -> Decision {
        let snapshot = self.current.load();
        let Some(set) = snapshot.as_ref() else {
            return no_policy();
        };
        set.decide(&ActionRequest {
            chain: &agent.chain,
            action,
            params,
            request,
            now: chrono::Utc::now(),
        })
    }
}

fn no_policy() -> Decision {
    Decision {
        verdict: cordon_policy::Verdict::Deny,
        rule_id: Arc::from("no-policy-loaded"),
        reason: Arc::from("no valid policy is loaded; Cordon denies everything until one is"),
        decided_by: Arc::from(""),
        policy_version: Arc::from("none"),
    }
}
