//! Stage 7, the credential going in, by the kind of the vault entry the
//! chosen binding names:
//! - a plain secret is injected as the connector's scheme says (`inject`);
//! - a `github-app` entry buys an installation token scoped to the
//!   binding (cached per instance and scope, revoked when the instance
//!   ends), injected the same way; echoes of it are redacted;
//! - an `aws-role` entry: the request `aws_sign` verified is re-signed with
//!   the instance's role session, and its body is checked (declared hash,
//!   signed chunks) as it streams.
//!
//! Any failure refuses the request (fail closed): nothing leaves with the
//! agent's placeholder or without the credential policy bound.
use std::{sync::Arc, time::SystemTime};

use cordon_jit::{
    InstanceId,
    aws::{self, StsError},
    github::{error::GithubError, scope::TokenScope},
};
use cordon_vault::{KIND_AWS_ROLE, KIND_GITHUB_APP, Secret};
use http::request::Parts;
use http_body_util::BodyExt;
use zeroize::Zeroizing;

use super::{aws_sign::AwsSigned, credential_plan::Chosen};
use crate::{
    cgroup::AgentPath,
    proxy::{
        body::{BoxError, ProxyBody},
        env::{Env, instance_of},
        inject::{self, Injected},
        redact::Echoes,
    },
};

/// What a vault entry's kind makes of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Injected as stored.
    Plain,
    GithubApp,
    AwsRole,
}

impl EntryKind {
    pub fn of(kind: &str) -> EntryKind {
        match kind {
            KIND_GITHUB_APP => EntryKind::GithubApp,
            KIND_AWS_ROLE => EntryKind::AwsRole,
            _ => EntryKind::Plain,
        }
    }
}

/// Which way the credential goes in (pure): the entry's kind against
/// whether the request was a verified AWS request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Plain,
    Token,
    Resign,
}

pub fn plan(kind: EntryKind, aws_request: bool) -> Result<Plan, &'static str> {
    match (kind, aws_request) {
        (EntryKind::AwsRole, true) => Ok(Plan::Resign),
        (EntryKind::AwsRole, false) => {
            Err("an aws-role entry re-signs AWS requests only (bind it to an aws-* connector)")
        }
        (_, true) => {
            Err("an AWS request is re-signed with an aws-role entry; this entry is not one")
        }
        (EntryKind::GithubApp, false) => Ok(Plan::Token),
        (EntryKind::Plain, false) => Ok(Plan::Plain),
    }
}

/// The request as it leaves: the secret to redact from the answer, and the
/// body to send.
pub struct Applied {
    pub injected: Injected,
    pub body: ProxyBody,
}

/// Puts the chosen credential into `parts` (whose URI is already the
/// upstream's). The error is the refusal's reason.
pub async fn apply(
    env: &Env,
    agent: &AgentPath,
    chosen: Option<&Chosen<'_>>,
    aws: Option<Box<AwsSigned>>,
    parts: &mut Parts,
    body: ProxyBody,
) -> Result<Applied, String> {
    if chosen.is_some() || aws.is_some() {
        inject::tls_only(&parts.uri, chosen)?;
    }
    let Some(chosen) = chosen else {
        if aws.is_some() {
            // Signed with a placeholder, but no binding holds for this
            // action: there is nothing to sign it with.
            return Err("no aws-role binding of the agent's policy applies to this action".into());
        }
        return Ok(Applied {
            injected: None,
            body,
        });
    };
    let (kind, secret) = open_entry(env, &chosen.entry)?;
    let instance = instance_of(agent);
    let applied = match plan(kind, aws.is_some())? {
        Plan::Plain => {
            let spellings =
                inject::apply(chosen, &mut parts.headers, &mut parts.uri, secret.expose())?;
            Applied {
                injected: Some(Arc::new(Echoes::new(secret, spellings))),
                body,
            }
        }
        Plan::Token => Applied {
            injected: Some(github_token(env, &instance, chosen, parts).await?),
            body,
        },
        Plan::Resign => {
            let signed = aws.ok_or("the AWS request was not verified")?;
            Applied {
                injected: None,
                body: resign(env, &instance, chosen, signed, parts, body).await?,
            }
        }
    };
    inject::mark_used(env, &chosen.entry, agent.agent());
    Ok(applied)
}

/// The bound entry, opened: its authenticated kind and its value (for a
/// plain entry, the secret injected). Read here, not on the blocking pool:
/// a read transaction never waits for redb's writer, and the two AEAD opens
/// take microseconds, less than the hop to another thread and back (which
/// this used to make twice per request, listing the vault for the kind and
/// then reading the entry).
fn open_entry(env: &Env, entry: &str) -> Result<(EntryKind, Secret), String> {
    let (kind, secret) = env
        .vault
        .get_with_kind(entry)
        .map_err(|e| format!("credential {entry} is unavailable: {e}"))?;
    Ok((EntryKind::of(&kind), secret))
}

/// A scoped installation token, minted on first use per instance and scope.
async fn github_token(
    env: &Env,
    instance: &InstanceId,
    chosen: &Chosen<'_>,
    parts: &mut Parts,
) -> Result<Arc<Echoes>, String> {
    let scope = TokenScope::new(&chosen.entry, &chosen.repositories, &chosen.permissions);
    let vault = env.vault.clone();
    let entry = chosen.entry.clone();
    let token = env
        .jit
        .github
        // Read (and decrypted) only when a token must be minted.
        .token_lazy(
            instance,
            chosen.connector,
            &scope,
            SystemTime::now(),
            || async move { Ok::<_, GithubError>(vault.github_app(&entry)?) },
        )
        .await
        .map_err(|e| {
            format!(
                "minting a GitHub installation token from {}: {e}",
                chosen.entry
            )
        })?;
    let secret = Zeroizing::new(token.expose().as_bytes().to_vec());
    let spellings = inject::apply(chosen, &mut parts.headers, &mut parts.uri, &secret)?;
    Ok(Arc::new(Echoes::new(Secret::new(secret), spellings)))
}

/// Re-signs the verified request with the instance's role session.
async fn resign(
    env: &Env,
    instance: &InstanceId,
    chosen: &Chosen<'_>,
    signed: Box<AwsSigned>,
    parts: &mut Parts,
    body: ProxyBody,
) -> Result<ProxyBody, String> {
    let now = SystemTime::now();
    let vault = env.vault.clone();
    let entry = chosen.entry.clone();
    let session = env
        .jit
        .aws_sessions
        .session_lazy(
            instance,
            chosen.connector,
            &chosen.entry,
            now,
            || async move { Ok::<_, StsError>(vault.aws_role(&entry)?) },
        )
        .await
        .map_err(|e| format!("assuming the role of {}: {e}", chosen.entry))?;
    let head = aws::RequestHead::new(
        &parts.method,
        &signed.authority,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
    );
    let mut resigned = aws::resign(&head, signed.verified, &session, now)
        .map_err(|e| format!("re-signing the AWS request: {e}"))?;
    let scheme = parts.uri.scheme_str().unwrap_or("https");
    let authority = parts.uri.authority().map(|a| a.as_str()).unwrap_or("");
    parts.uri = format!("{scheme}://{authority}{}", resigned.path_and_query)
        .parse()
        .map_err(|e| format!("the re-signed request target: {e}"))?;
    parts.headers = std::mem::take(&mut resigned.headers);
    parts.headers.remove(http::header::HOST);
    Ok(resigned
        .body(body)
        .map_err(|e| Box::new(e) as BoxError)
        .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_kind_decides_how_the_credential_goes_in() {
        assert_eq!(EntryKind::of("github-app"), EntryKind::GithubApp);
        assert_eq!(EntryKind::of("aws-role"), EntryKind::AwsRole);
        assert_eq!(EntryKind::of("token"), EntryKind::Plain);
        assert_eq!(EntryKind::of(""), EntryKind::Plain);
        assert_eq!(plan(EntryKind::Plain, false), Ok(Plan::Plain));
        assert_eq!(plan(EntryKind::GithubApp, false), Ok(Plan::Token));
        assert_eq!(plan(EntryKind::AwsRole, true), Ok(Plan::Resign));
    }

    #[test]
    fn an_aws_request_goes_out_only_re_signed_and_a_role_only_on_aws() {
        assert!(plan(EntryKind::Plain, true).is_err());
        assert!(plan(EntryKind::GithubApp, true).is_err());
        assert!(plan(EntryKind::AwsRole, false).is_err());
    }

    #[test]
    fn instances_are_keyed_by_chain_and_instance() {
        let p = AgentPath {
            chain: vec!["lead".into(), "writer".into()],
            instances: vec!["1".into(), "7".into()],
        };
        let id = instance_of(&p);
        assert_eq!(id.to_string(), "lead/writer/7");
    }
}
