//! The app's own credential: a short RS256 JWT, used only to mint
//! installation tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use cordon_vault::GithubAppEntry;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::error::GithubError;

/// Backdated so a GitHub clock slightly behind ours still accepts it.
pub const IAT_SKEW_SECS: u64 = 60;
/// GitHub refuses app JWTs that live longer than ten minutes; with the
/// backdating this one lives exactly ten.
pub const LIFETIME_SECS: u64 = 9 * 60;

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// Signs the app JWT for `entry` at `now`.
pub fn app_jwt(entry: &GithubAppEntry, now: SystemTime) -> Result<String, GithubError> {
    let key = EncodingKey::from_rsa_pem(entry.private_key_pem.as_bytes())
        .map_err(|e| GithubError::PrivateKey(e.to_string()))?;
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| GithubError::Jwt("the clock is before 1970".into()))?
        .as_secs();
    let claims = Claims {
        iat: secs.saturating_sub(IAT_SKEW_SECS),
        exp: secs + LIFETIME_SECS,
        iss: entry.app_id.to_string(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| GithubError::Jwt(e.to_string()))
}
