//! Stage 5: which credential a request goes out with (pure, over the
//! pinned snapshot). Two questions, asked at two points of the path:
//! - before the decision, whether the agent presented a real-looking
//!   credential Cordon did not issue (refused, or stripped when configured);
//! - after it, which binding of the agent's policy applies to this action
//!   and its params, and so which vault entry is injected. The first
//!   binding whose `when` holds is used; none means no credential.
//!
//! A sub-agent does not inherit its parent's keys: only the acting agent's
//! own bindings count (delegation must not widen what a child can sign as).
use std::collections::BTreeMap;

use cordon_connectors::{CredentialScheme, CredentialSpec, Presented};
use http::{HeaderMap, Uri};
use serde_json::{Map, Value};

use crate::{config::ForeignCredentials, request::Pinned};

/// What to do with a credential the agent itself presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence<'p> {
    /// Nothing Cordon did not issue.
    Clean,
    /// A foreign credential, to be removed before forwarding: the scheme
    /// says which headers carry it.
    Strip(&'p CredentialScheme),
    /// A foreign credential: the request is refused.
    Refuse,
}

/// The credential to inject, chosen after the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen<'p> {
    pub connector: &'p str,
    /// How the connector carries a credential; `None` for AWS connectors,
    /// whose requests are re-signed instead (`jit_inject`).
    pub spec: Option<&'p CredentialSpec>,
    /// The vault entry.
    pub entry: String,
    /// For entries that mint scoped tokens: repositories and permissions.
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

/// The credential rule for `connector` at `host`, if it has one.
fn spec<'p>(pinned: &'p Pinned, connector: &str, host: &str) -> Option<&'p CredentialSpec> {
    pinned
        .connectors
        .connector(connector)?
        .credential_for_host(host)
}

/// Whether the agent presented a credential Cordon did not issue.
pub fn presence<'p>(
    pinned: &'p Pinned,
    connector: Option<&str>,
    host: &str,
    headers: &HeaderMap,
    uri: &Uri,
    mode: ForeignCredentials,
) -> Presence<'p> {
    let Some(spec) = connector.and_then(|c| spec(pinned, c, host)) else {
        return Presence::Clean;
    };
    match (spec.inspect(headers, uri), mode) {
        (Presented::Foreign, ForeignCredentials::Strip) => Presence::Strip(spec.scheme()),
        (Presented::Foreign, _) => Presence::Refuse,
        _ => Presence::Clean,
    }
}

/// Why a foreign credential is refused, for the refusal's reason.
pub fn foreign_reason(connector: Option<&str>) -> String {
    format!(
        "the request carries a {} credential Cordon did not issue; agents use placeholders and Cordon injects the real one",
        connector.unwrap_or("connector")
    )
}

/// The binding of `agent`'s policy for this action, and the entry it names.
pub fn choose<'p>(
    pinned: &'p Pinned,
    agent: &str,
    connector: Option<&'p str>,
    host: &str,
    action: &str,
    params: &Map<String, Value>,
) -> Option<Chosen<'p>> {
    let connector = connector?;
    let spec = spec(pinned, connector, host);
    if spec.is_none() && !super::aws_sign::is_aws(connector) {
        return None;
    }
    let bindings = pinned.policy.as_ref()?.bindings_of(agent, connector)?;
    let binding = cordon_policy::choose(&bindings, action, params)?;
    Some(Chosen {
        connector,
        spec,
        entry: binding.entry.clone(),
        repositories: binding.repositories.clone(),
        permissions: binding.permissions.clone(),
    })
}

#[cfg(test)]
mod tests;
