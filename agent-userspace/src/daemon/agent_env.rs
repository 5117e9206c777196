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
    env.extend(crate::proxy::credentials::placeholders(d, agent));
    // Sub-agents launched from inside find this daemon, not the host one.
    if d.cfg.paths != crate::paths::Paths::host() {
        env.insert(
            "CORDON_STATE_DIR".into(),
            d.cfg.paths.state_dir.display().to_string(),
        );
    }
    env
}
