//! Logged-in browsers. A session is a random id in an HttpOnly cookie and a
//! CSRF token the page sends back in a header on every change. The daemon
//! keeps the SHA-256 of each id (not the id) and the hash of the login
//! token it was opened with, so rotating the token ends every session.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session lasts a working day at most; then the operator logs in again.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Past this many open sessions the oldest is dropped (a loop of logins
/// cannot grow the daemon's memory).
const MAX_SESSIONS: usize = 64;

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    /// Hash of the login token the session was opened with.
    pub token_hash: [u8; 32],
    /// A short, non-secret name for the audit trail's `approver` field.
    pub label: String,
    opened: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn id_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session; returns its id (for the cookie) and the session.
    pub fn open(&self, token_hash: [u8; 32], now: Instant) -> (String, Session) {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let session = Session {
            csrf: hex::encode(rand::random::<[u8; 32]>()),
            token_hash,
            label: format!("console session {}", &hex::encode(id_hash(&id))[..8]),
            opened: now,
        };
        let mut all = self.by_id_hash.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, s| now.duration_since(s.opened) < LIFETIME);
        while all.len() >= MAX_SESSIONS {
            let Some(oldest) = all.iter().min_by_key(|(_, s)| s.opened).map(|(k, _)| *k) else {
                break;
            };
            all.remove(&oldest);
        }
        all.insert(id_hash(&id), session.clone());
        (id, session)
    }

    /// The live session for `id` opened with the token now in force.
    pub fn get(&self, id: &str, current_token: &[u8; 32], now: Instant) -> Option<Session> {
        let key = id_hash(id);
        let mut all = self.by_id_hash.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.get(&key)?;
        let live = now.duration_since(s.opened) < LIFETIME
            && bool::from(s.token_hash.ct_eq(current_token));
        if !live {
            all.remove(&key);
            return None;
        }
        Some(s.clone())
    }

    pub fn close(&self, id: &str) {
        self.by_id_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id_hash(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_its_lifetime_or_a_new_token() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = [1u8; 32];
        let (id, opened) = s.open(token, t0);
        assert_eq!(s.get(&id, &token, t0).unwrap().csrf, opened.csrf);
        assert!(s.get("someone-else", &token, t0).is_none());
        assert!(s.get(&id, &[2u8; 32], t0).is_none(), "token rotated");
        // Rotation removed it for good.
        assert!(s.get(&id, &token, t0).is_none());
        let (id, _) = s.open(token, t0);
        assert!(s.get(&id, &token, t0 + LIFETIME).is_none(), "expired");
    }

    #[test]
    fn closing_ends_a_session_and_sessions_are_bounded() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = [1u8; 32];
        let (first, _) = s.open(token, t0);
        s.close(&first);
        assert!(s.get(&first, &token, t0).is_none());
        let (oldest, _) = s.open(token, t0);
        for i in 0..MAX_SESSIONS {
            s.open(token, t0 + Duration::from_millis(1 + i as u64));
        }
        assert!(s.get(&oldest, &token, t0).is_none(), "the oldest was kept");
    }
}
