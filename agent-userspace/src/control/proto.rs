//! Messages on the control socket.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Create an instance cgroup for `agent` and move the caller into it.
    /// `uid` is the user the agent will run as and `cwd` where it starts:
    /// the daemon derives the agent's containment from both.
    Run {
        agent: String,
        #[serde(default)]
        uid: Option<u32>,
        #[serde(default)]
        cwd: Option<std::path::PathBuf>,
        /// Set for a root agent run in a user namespace: the host uid its
        /// uid 0 maps to.
        #[serde(default)]
        mapped_uid: Option<u32>,
        /// The launcher's environment, which the agent inherits: checked
        /// against the vault (`daemon::launch_env`), never kept or logged.
        #[serde(default)]
        env: Vec<(String, String)>,
    },
    Ps,
    PolicyReload,
    /// Kill switch: `target` is AGENT or AGENT/ID; `all` for everything.
    Kill {
        target: Option<String>,
        all: bool,
        reason: String,
        connector: Option<String>,
    },
    Resume {
        target: Option<String>,
        all: bool,
        connector: Option<String>,
    },
    Terminate {
        target: Option<String>,
        all: bool,
    },
    Approvals,
    /// Let a held request through; with `uses`, `grant_secs` or `always`,
    /// also give a standing grant (see `daemon/grants`).
    Approve {
        id: String,
        grant_secs: Option<u64>,
        /// Uses in all, the held request counting as the first.
        #[serde(default)]
        uses: Option<u32>,
        /// Write the answer into the policy directory as an `approved` rule.
        #[serde(default)]
        always: bool,
        /// Scope the grant or rule to exactly the held request's params.
        #[serde(default)]
        same_params: bool,
    },
    /// Standing grants in force.
    Grants,
    GrantRevoke {
        id: String,
    },
    Deny {
        id: String,
        reason: String,
    },
    /// The value travels hex-encoded over the local socket, never in argv.
    VaultSet {
        name: String,
        kind: String,
        value_hex: String,
    },
    VaultList,
    VaultRm {
        name: String,
    },
    VaultRotateKey,
    /// `cordon audit tail`: the newest `lines` records matching, then (with
    /// `follow`) each new one as it commits. Streamed (see `stream.rs`).
    AuditTail {
        agent: Option<String>,
        decision: Option<String>,
        lines: usize,
        follow: bool,
        json: bool,
    },
    /// `cordon audit export`: RFC 3339 bounds, `format` jsonl or ocsf. Streamed.
    AuditExport {
        since: Option<String>,
        until: Option<String>,
        format: String,
    },
    AuditVerify,
}

impl Request {
    /// Operations that change what agents may do, refused to any caller
    /// inside a Cordon cgroup.
    pub fn is_operator_only(&self) -> bool {
        matches!(
            self,
            Request::PolicyReload
                | Request::Kill { .. }
                | Request::Resume { .. }
                | Request::Terminate { .. }
                | Request::Approvals
                | Request::Approve { .. }
                | Request::Grants
                | Request::GrantRevoke { .. }
                | Request::Deny { .. }
                | Request::VaultSet { .. }
                | Request::VaultList
                | Request::VaultRm { .. }
                | Request::VaultRotateKey
                | Request::AuditTail { .. }
                | Request::AuditExport { .. }
                | Request::AuditVerify
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Run { .. } => "run",
            Request::Ps => "ps",
            Request::PolicyReload => "policy_reload",
            Request::Kill { .. } => "kill",
            Request::Resume { .. } => "resume",
            Request::Terminate { .. } => "terminate",
            Request::Approvals => "approvals",
            Request::Approve { .. } => "approve",
            Request::Grants => "grants",
            Request::GrantRevoke { .. } => "grant_revoke",
            Request::Deny { .. } => "deny",
            Request::VaultSet { .. } => "vault_set",
            Request::VaultList => "vault_list",
            Request::VaultRm { .. } => "vault_rm",
            Request::VaultRotateKey => "vault_rotate_key",
            Request::AuditTail { .. } => "audit_tail",
            Request::AuditExport { .. } => "audit_export",
            Request::AuditVerify => "audit_verify",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub body: serde_json::Value,
}

impl Reply {
    pub fn ok(body: impl Serialize) -> Reply {
        Reply {
            ok: true,
            error: None,
            body: serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
        }
    }
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(msg.into()),
            body: serde_json::Value::Null,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReply {
    pub chain: String,
    pub instance: String,
    pub cgroup: String,
    /// Variables the agent gets: CA bundle locations, credential placeholders.
    pub env: BTreeMap<String, String>,
    /// What `cordon run` must enter before exec; `None` only when the
    /// policy turned containment off for this agent.
    #[serde(default)]
    pub contain: Option<crate::contain::LandlockSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub version: String,
    pub pid: u32,
    pub proxy_port: u16,
    pub dns_port: u16,
    pub policy_version: String,
    pub cgroup_parent: String,
    /// Which containment layers are in force on this host.
    #[serde(default)]
    pub containment: serde_json::Value,
    /// The web console's address, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    /// When this process image began serving agents (unix milliseconds): a
    /// daemon upgraded in place keeps its pid, and this tells the new binary
    /// from the old. Absent while starting, and from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_since_ms: Option<u64>,
    /// The daemon replaces itself with its installed binary on SIGUSR2
    /// (`cordon upgrade`); false from daemons that predate it.
    #[serde(default)]
    pub upgrades_in_place: bool,
}
