//! The environment every agent starts with.
use super::Shared;

/// What every agent gets in its environment: the CA bundle through the
/// variables real clients read. No proxy variables: capture is transparent.
pub fn agent_env(d: &Shared, agent: &str) -> std::collections::BTreeMap<String, String> {
    let bundle = d.cfg.paths.agent_ca_bundle();
    let mut env: std::collections::BTreeMap<String, String> = cordon_tls::agent_ca_env(&bundle)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .collect();
    env.extend(placeholders(d, agent));
    // Sub-agents launched from inside find this daemon, not the host one.
    if d.cfg.paths != crate::paths::Paths::host() {
        env.insert(
            "CORDON_STATE_DIR".into(),
            d.cfg.paths.state_dir.display().to_string(),
        );
    }
    env
}

/// Placeholder variables for the connectors the agent's policy binds a
/// credential to, so SDKs that insist on a key start normally.
fn placeholders(d: &Shared, agent: &str) -> Vec<(String, String)> {
    let Some(set) = d.policy.engine().snapshot() else {
        return vec![];
    };
    let connectors = d.connectors.load();
    let mut out = Vec::new();
    for cname in set.bindings_for(agent).keys() {
        if let Some(c) = connectors.connector(cname) {
            for var in c.placeholder_env() {
                out.push((var.clone(), c.placeholder_value()));
            }
        }
    }
    out
}
