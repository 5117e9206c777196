//! GitHub's REST calls for installation tokens: mint
//! (`POST /app/installations/{id}/access_tokens`, authenticated by the app
//! JWT) and revoke (`DELETE /installation/token`, authenticated by the
//! token itself).

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use cordon_vault::GithubAppEntry;
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::GithubError;
use super::jwt::app_jwt;
use super::scope::TokenScope;
use crate::cache::Expiring;
use crate::https::{HttpClient, HttpResponse};

const API_VERSION: &str = "2022-11-28";

/// A minted installation token. `Debug` never shows it.
pub struct InstallationToken {
    token: Zeroizing<String>,
    pub expires_at: SystemTime,
    /// What GitHub says the token may do (it may grant less than asked).
    pub permissions: BTreeMap<String, String>,
    /// Repository full names the token covers; `None` for all.
    pub repositories: Option<Vec<String>>,
}

impl InstallationToken {
    /// The token, for the request Cordon forwards. Never log it.
    pub fn expose(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken")
            .field("expires_at", &self.expires_at)
            .field("permissions", &self.permissions)
            .field("repositories", &self.repositories)
            .finish_non_exhaustive()
    }
}

impl Expiring for InstallationToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: String,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
    #[serde(default)]
    repositories: Option<Vec<RepoAnswer>>,
}

#[derive(Deserialize)]
struct RepoAnswer {
    full_name: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    message: String,
}

/// GitHub's API at one base URL (`https://api.github.com`, or
/// `https://HOST/api/v3` for GitHub Enterprise Server).
#[derive(Debug, Clone)]
pub struct GithubApi {
    http: HttpClient,
    base: String,
}

impl GithubApi {
    pub fn new(http: HttpClient, base: &str) -> Result<GithubApi, GithubError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: http::Uri = base
            .parse()
            .map_err(|_| GithubError::BaseUrl(base.clone()))?;
        if uri.host().is_none() || !matches!(uri.scheme_str(), Some("https" | "http")) {
            return Err(GithubError::BaseUrl(base));
        }
        Ok(GithubApi { http, base })
    }

    /// Mints a token for `entry`'s installation, limited to `scope`.
    pub async fn create_token(
        &self,
        entry: &GithubAppEntry,
        scope: &TokenScope,
        now: SystemTime,
    ) -> Result<InstallationToken, GithubError> {
        let jwt = Zeroizing::new(app_jwt(entry, now)?);
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.base, entry.installation_id
        );
        let body = serde_json::to_vec(&scope.request_body())
            .map_err(|e| GithubError::Answer(e.to_string()))?;
        let req = self.request(Method::POST, &url, &jwt, Bytes::from(body))?;
        let res = self.http.send(req).await?;
        if res.status.as_u16() != 201 {
            return Err(refused("creating an installation token", &res));
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&res.body).map_err(|e| GithubError::Answer(e.to_string()))?;
        let expires_at = chrono::DateTime::parse_from_rfc3339(&answer.expires_at)
            .map_err(|_| GithubError::Answer(format!("expires_at {:?}", answer.expires_at)))?;
        Ok(InstallationToken {
            token: Zeroizing::new(answer.token),
            expires_at: SystemTime::from(expires_at.with_timezone(&chrono::Utc)),
            permissions: answer.permissions,
            repositories: answer
                .repositories
                .map(|r| r.into_iter().map(|r| r.full_name).collect()),
        })
    }

    /// Revokes `token` (it stops working at once).
    pub async fn revoke(&self, token: &InstallationToken) -> Result<(), GithubError> {
        let url = format!("{}/installation/token", self.base);
        let req = self.request(Method::DELETE, &url, token.expose(), Bytes::new())?;
        let res = self.http.send(req).await?;
        if res.status.as_u16() != 204 {
            return Err(refused("revoking an installation token", &res));
        }
        Ok(())
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        bearer: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, GithubError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {bearer}"))
            .map_err(|_| GithubError::Jwt("not a header value".into()))?;
        auth.set_sensitive(true);
        Request::builder()
            .method(method)
            .uri(url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header("user-agent", "cordon")
            .header("content-type", "application/json")
            .header("authorization", auth)
            .body(Full::new(body))
            .map_err(|_| GithubError::BaseUrl(url.to_string()))
    }
}

fn refused(what: &'static str, res: &HttpResponse) -> GithubError {
    let message = serde_json::from_slice::<ErrorAnswer>(&res.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| "(no message)".into());
    GithubError::Refused {
        what,
        status: res.status.as_u16(),
        message,
    }
}
