//! Temporary AWS credentials from STS: what the forwarded request is
//! signed with.

use std::time::SystemTime;

use zeroize::Zeroizing;

/// An AssumeRole session: key id, secret, token and when it expires.
pub struct SessionCredentials {
    pub access_key_id: String,
    secret_access_key: Zeroizing<String>,
    pub session_token: Option<String>,
    pub expires_at: SystemTime,
}

impl SessionCredentials {
    pub fn new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        expires_at: SystemTime,
    ) -> SessionCredentials {
        SessionCredentials {
            access_key_id,
            secret_access_key: Zeroizing::new(secret_access_key),
            session_token,
            expires_at,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret_access_key
    }
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
