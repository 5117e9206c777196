//! The daemon's view of policy: the engine holds one generation-pinned
//! snapshot per decision, swapped atomically on reload, and denies
//! everything (saying why) until a valid policy has loaded.
use std::path::Path;

use chrono::{DateTime, Utc};
use cordon_policy::{ActionRequest, HttpInfo, Outcome, PolicyEngine, PolicyError, RunContext};
use serde_json::{Map, Value};

use arc_swap::ArcSwap;
use cordon_connectors::ConnectorSet;

use crate::{cgroup::AgentPath, request::Pinned};

pub struct PolicyHandle {
    engine: PolicyEngine,
}

impl PolicyHandle {
    pub fn load(dir: &Path) -> PolicyHandle {
        let h = PolicyHandle {
            engine: PolicyEngine::new(),
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
        super::strict_modes::check_tree(dir).map_err(|e| PolicyError::File {
            file: dir.display().to_string(),
            message: format!("strict modes: {e}"),
        })?;
        self.engine.reload(dir)
    }

    pub fn version(&self) -> String {
        self.engine.version().unwrap_or_else(|| "none".into())
    }

    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// The snapshot one request is decided under: the policy set and the
    /// connectors in force now.
    pub fn pin(&self, connectors: &ArcSwap<ConnectorSet>) -> Pinned {
        Pinned::new(self.engine.snapshot(), connectors.load_full())
    }

    /// The full decision under the request's pinned snapshot.
    pub fn decide_pinned(
        &self,
        pinned: &Pinned,
        agent: &AgentPath,
        started_at: DateTime<Utc>,
        action: &str,
        params: &Map<String, Value>,
        request: Option<HttpInfo<'_>>,
    ) -> Outcome {
        let run = RunContext {
            instance: run_id(agent),
            agent: agent.agent().to_string(),
            started_at,
        };
        self.engine.decide_pinned(
            pinned.policy.as_deref(),
            &run,
            &ActionRequest {
                chain: &agent.chain,
                action,
                params,
                request,
                now: Utc::now(),
            },
        )
    }
}

pub use crate::cgroup::run_id;
