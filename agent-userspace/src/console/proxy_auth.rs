//! Who is asking, in socket mode. The operator's reverse proxy is the only
//! thing that can connect (the socket's mode and group), and it
//! authenticates every request itself, so the console has no login: each
//! request is the operator's. With `user_header` set the proxy must name
//! the user on every request (a request without the name is refused, so a
//! proxy that forgot to authenticate fails closed), and the name becomes
//! the approver in the audit trail.
//!
//! CSRF still applies: a page elsewhere in the operator's browser can make
//! the browser send requests through the proxy with the proxy's own
//! credentials (a basic-auth or SSO cookie). Each user gets a random CSRF
//! token, readable only by a same-origin page (`GET /api/session`).
use std::{collections::HashMap, sync::Mutex};

use super::guard::Refusal;

/// Users whose CSRF token is remembered; past this the map starts over
/// (their pages fetch a new token after one refused change).
const MAX_USERS: usize = 1024;
/// Longest user name taken from the proxy.
const MAX_NAME: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The approver in the audit trail (not a secret).
    pub label: String,
    pub csrf: String,
}

pub struct ProxyAuth {
    /// Lower-case header name, when the proxy names its users.
    pub user_header: Option<String>,
    csrf_by_user: Mutex<HashMap<String, String>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

impl ProxyAuth {
    pub fn new(user_header: Option<String>) -> ProxyAuth {
        ProxyAuth {
            user_header,
            csrf_by_user: Mutex::new(HashMap::new()),
        }
    }

    /// The identity of a request that carried `user` in the user header
    /// (`None`: no such header).
    pub fn identify(&self, user: Option<&str>) -> Result<Identity, Refusal> {
        let (key, label) = match &self.user_header {
            None => (String::new(), "console (reverse proxy)".to_string()),
            Some(header) => {
                let name = user.map(str::trim).unwrap_or("");
                if !valid_name(name) {
                    return Err(Refusal::NoUser(header.clone()));
                }
                (name.to_string(), format!("console user {name}"))
            }
        };
        let mut all = self.csrf_by_user.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains_key(&key) && all.len() >= MAX_USERS {
            all.clear();
        }
        let csrf = all
            .entry(key)
            .or_insert_with(|| hex::encode(rand::random::<[u8; 32]>()))
            .clone();
        Ok(Identity { label, csrf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_user_header_every_request_must_name_a_user() {
        let a = ProxyAuth::new(Some("x-remote-user".into()));
        for missing in [
            None,
            Some(""),
            Some("  "),
            Some("bad\nname"),
            Some("a\u{7f}"),
        ] {
            assert_eq!(
                a.identify(missing),
                Err(Refusal::NoUser("x-remote-user".into())),
                "{missing:?}"
            );
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(a.identify(Some(&long)).is_err());
        let alice = a.identify(Some("alice")).unwrap();
        assert_eq!(alice.label, "console user alice");
        assert_eq!(a.identify(Some(" alice ")).unwrap(), alice, "same token");
        let bob = a.identify(Some("bob")).unwrap();
        assert_ne!(bob.csrf, alice.csrf, "one user's token is not another's");
        assert_eq!(alice.csrf.len(), 64);
    }

    #[test]
    fn without_a_user_header_the_proxy_is_the_operator() {
        let a = ProxyAuth::new(None);
        let one = a.identify(None).unwrap();
        assert_eq!(one.label, "console (reverse proxy)");
        assert_eq!(a.identify(Some("ignored")).unwrap(), one);
        let other = ProxyAuth::new(None).identify(None).unwrap();
        assert_ne!(other.csrf, one.csrf, "tokens are random per daemon");
    }
}
