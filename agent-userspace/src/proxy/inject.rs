//! Stage 6 (after the decision): the chosen credential goes in. The
//! agent's own auth is replaced by the real secret from the vault; agents
//! only ever hold placeholders.
use std::sync::Arc;

use cordon_connectors::{CredentialScheme, Spellings};
use http::{HeaderMap, Uri};

use super::{env::Env, pipeline::credential_plan::Chosen, redact::Echoes};

/// The secret that went upstream, in every spelling it went, kept only to
/// redact echoes of it.
pub type Injected = Option<Arc<Echoes>>;

/// Applies `chosen` (none: nothing to inject). The error is why the bound
/// credential could not be applied; the request is then refused.
pub async fn inject(
    env: &Env,
    agent: &str,
    chosen: Option<&Chosen<'_>>,
    headers: &mut HeaderMap,
    uri: &mut Uri,
) -> Result<Injected, String> {
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    tls_only(uri, Some(chosen))?;
    // Read here, not on the blocking pool: a read transaction never waits
    // for redb's writer, and the two AEAD opens take microseconds, less
    // than the hop to another thread and back.
    let secret = env.vault.get(&chosen.entry).map_err(|e| {
        format!(
            "credential {} for {} is unavailable: {e}",
            chosen.entry, chosen.connector
        )
    })?;
    let spellings = apply(chosen, headers, uri, secret.expose())?;
    mark_used(env, &chosen.entry, agent);
    Ok(Some(Arc::new(Echoes::new(secret, spellings))))
}

/// A credential leaves only on a verified TLS connection: in a plain HTTP
/// request any host on the path could read it (and replay a signature), and
/// nothing would prove the far end is the upstream it is bound to. `uri` is
/// the upstream's (its scheme is the upstream leg's).
pub fn tls_only(uri: &Uri, chosen: Option<&Chosen<'_>>) -> Result<(), String> {
    if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        return Ok(());
    }
    let what = chosen.map_or_else(
        || "the agent's AWS request".to_string(),
        |c| format!("credential {} for {}", c.entry, c.connector),
    );
    Err(format!(
        "{what} is sent only over TLS; this request was plain HTTP (use https://)"
    ))
}

/// Puts `secret` where the connector's scheme carries it (replacing the
/// agent's placeholder). Returns the secret's other spellings on the wire.
pub fn apply(
    chosen: &Chosen<'_>,
    headers: &mut HeaderMap,
    uri: &mut Uri,
    secret: &[u8],
) -> Result<Spellings, String> {
    let spec = chosen.spec.ok_or_else(|| {
        format!(
            "connector {} has no credential scheme to carry entry {}",
            chosen.connector, chosen.entry
        )
    })?;
    spec.apply(headers, uri, secret)
        .map_err(|e| format!("applying the {} credential: {e}", chosen.connector))
}

/// Records that `agent` used `entry` (best effort: usage is informational),
/// at most once per `USAGE_EVERY` for each pair.
pub fn mark_used(env: &Env, entry: &str, agent: &str) {
    if !env.vault.usage_due(entry, agent) {
        return;
    }
    let vault = env.vault.clone();
    let entry = entry.to_string();
    let who = agent.to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = vault.mark_used(&entry, &who) {
            tracing::debug!("vault usage not recorded: {e}");
        }
    });
}

/// Removes the agent's own credential for a connector (the headers its
/// scheme uses), for `foreign_credentials = "strip"`.
pub fn strip(scheme: &CredentialScheme, headers: &mut HeaderMap) {
    headers.remove(http::header::AUTHORIZATION);
    if let CredentialScheme::Header { name } = scheme {
        headers.remove(name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_goes_out_only_over_tls() {
        let spec_free = Chosen {
            connector: "github",
            spec: None,
            entry: "gh".into(),
            repositories: vec![],
            permissions: Default::default(),
        };
        let https: Uri = "https://api.github.com/x".parse().unwrap();
        let http: Uri = "http://api.github.com/x".parse().unwrap();
        assert_eq!(tls_only(&https, Some(&spec_free)), Ok(()));
        assert_eq!(tls_only(&https, None), Ok(()));
        let refused = tls_only(&http, Some(&spec_free)).unwrap_err();
        assert!(
            refused.contains("credential gh for github is sent only over TLS"),
            "{refused}"
        );
        assert!(tls_only(&http, None).unwrap_err().contains("AWS"));
    }
}
