//! Signing a verified request again, with the session's credentials.
//!
//! The forwarded request keeps the agent's shape: the same signed headers
//! (plus the new date and session token), the same payload hash, the same
//! form (header or presigned URL). Only the credentials, date and signature
//! change, so what the agent signed is exactly what AWS receives.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};

use super::auth::{QUERY_AUTH_PARAMS, SigForm};
use super::body::BodyPlan;
use super::canonical::{self, ALGORITHM, CanonicalParts, CredentialScope};
use super::chunked::{Chain, ChunkResigner};
use super::credentials::SessionCredentials;
use super::encode::{canonical_query, canonical_uri, encode_component};
use super::error::SigError;
use super::head::RequestHead;
use super::verify::{PayloadMode, Verified, amz_date, canonical_headers};

/// The request to forward: its full header map (the agent's, with the
/// signature replaced), its path and query, and how to treat its body
/// ([`Resigned::body`]).
#[derive(Debug)]
pub struct Resigned {
    pub headers: HeaderMap,
    /// The path and query to send; differs from the agent's only for a
    /// presigned URL, whose signature lives in the query.
    pub path_and_query: String,
    pub(crate) plan: BodyPlan,
}

/// Re-signs `head`, which [`super::verify`] accepted as `verified`, with
/// `session`, dated `now`.
pub fn resign(
    head: &RequestHead<'_>,
    verified: Verified,
    session: &SessionCredentials,
    now: SystemTime,
) -> Result<Resigned, SigError> {
    let date = amz_date(now);
    let scope = CredentialScope {
        date: date[..8].to_string(),
        region: verified.scope.region.clone(),
        service: verified.scope.service.clone(),
    };
    let key = canonical::signing_key(session.secret(), &scope);
    let mut headers = head.headers.clone();
    headers.remove(http::header::AUTHORIZATION);
    headers.remove("x-amz-security-token");
    let (path_and_query, signature) = match verified.form {
        SigForm::Header => {
            let mut signed = verified.signed_headers.clone();
            headers.insert("x-amz-date", value(&date)?);
            ensure(&mut signed, "x-amz-date", true);
            if let Some(token) = &session.session_token {
                headers.insert("x-amz-security-token", sensitive(token)?);
            }
            ensure(
                &mut signed,
                "x-amz-security-token",
                session.session_token.is_some(),
            );
            let view = RequestHead {
                headers: &headers,
                ..*head
            };
            let canon = canonical_headers(&view, &signed)?;
            let uri = canonical_uri(&scope.service, head.path);
            let query = canonical_query(head.query, &[]);
            let parts = CanonicalParts {
                method: head.method.as_str(),
                uri: &uri,
                query: &query,
                headers: &canon,
                payload_hash: verified.payload.canonical(),
            };
            let sig = canonical::sign(
                &key,
                &canonical::string_to_sign(&date, &scope, &parts.render()),
            );
            let auth = format!(
                "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={sig}",
                session.access_key_id,
                scope.to_scope_string(),
                parts.signed_headers(),
            );
            headers.insert(http::header::AUTHORIZATION, sensitive(&auth)?);
            (path_and_query(head.path, head.query), sig)
        }
        SigForm::Query { expires } => {
            let mut query: Vec<String> = head
                .query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = super::encode::decode(p.split('=').next().unwrap_or(""));
                    !QUERY_AUTH_PARAMS.contains(&name.as_str())
                })
                .map(str::to_string)
                .collect();
            let credential = format!("{}/{}", session.access_key_id, scope.to_scope_string());
            let mut add = |k: &str, v: &str| query.push(format!("{k}={}", encode_component(v)));
            add("X-Amz-Algorithm", ALGORITHM);
            add("X-Amz-Credential", &credential);
            add("X-Amz-Date", &date);
            add("X-Amz-Expires", &expires.to_string());
            add("X-Amz-SignedHeaders", &verified.signed_headers.join(";"));
            if let Some(token) = &session.session_token {
                add("X-Amz-Security-Token", token);
            }
            let joined = query.join("&");
            let canon = canonical_headers(
                &RequestHead {
                    headers: &headers,
                    ..*head
                },
                &verified.signed_headers,
            )?;
            let uri = canonical_uri(&scope.service, head.path);
            let cquery = canonical_query(Some(&joined), &[]);
            let parts = CanonicalParts {
                method: head.method.as_str(),
                uri: &uri,
                query: &cquery,
                headers: &canon,
                payload_hash: verified.payload.canonical(),
            };
            let sig = canonical::sign(
                &key,
                &canonical::string_to_sign(&date, &scope, &parts.render()),
            );
            let full = format!("{joined}&X-Amz-Signature={sig}");
            (path_and_query(head.path, Some(&full)), sig)
        }
    };
    let plan = match verified.payload {
        PayloadMode::Hashed(expected) if !verified.body_checked => BodyPlan::CheckHash(expected),
        PayloadMode::StreamingSigned => BodyPlan::Chunks(Box::new(ChunkResigner::new(
            Chain {
                key: verified.agent_key,
                amz_date: verified.amz_date,
                scope: verified.scope,
                previous: verified.seed_signature,
            },
            Chain {
                key,
                amz_date: date,
                scope,
                previous: signature,
            },
        ))),
        _ => BodyPlan::Pass,
    };
    Ok(Resigned {
        headers,
        path_and_query,
        plan,
    })
}

fn path_and_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// Adds or removes `name` in the sorted signed-header list.
fn ensure(signed: &mut Vec<String>, name: &str, present: bool) {
    match (signed.binary_search_by(|h| h.as_str().cmp(name)), present) {
        (Err(at), true) => signed.insert(at, name.to_string()),
        (Ok(at), false) => {
            signed.remove(at);
        }
        _ => {}
    }
}

fn value(text: &str) -> Result<HeaderValue, SigError> {
    HeaderValue::from_str(text).map_err(|_| SigError::Session("not a header value".into()))
}

fn sensitive(text: &str) -> Result<HeaderValue, SigError> {
    let mut v = value(text)?;
    v.set_sensitive(true);
    Ok(v)
}
