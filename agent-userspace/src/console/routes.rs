//! The console's routes, as data: which path and method, whether the
//! caller must be logged in, and whether it changes anything (then the
//! CSRF check applies). Everything not listed is 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Index,
    Script,
    Style,
    /// Browsers ask for one; there is none (204 keeps their logs quiet).
    Icon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Asset(Asset),
    Session,
    Login,
    Logout,
    Agents,
    Approvals,
    Grants,
    Policy,
    Vault,
    Suggest,
    AuditStream,
    Approve,
    Deny,
    GrantRevoke,
    Kill,
    Resume,
    Terminate,
}

impl Route {
    pub fn parse(method: &str, path: &str) -> Option<Route> {
        use Route::*;
        let r = match (method, path) {
            ("GET", "/") => Asset(self::Asset::Index),
            ("GET", "/app.js") => Asset(self::Asset::Script),
            ("GET", "/app.css") => Asset(self::Asset::Style),
            ("GET", "/favicon.ico") => Asset(self::Asset::Icon),
            ("GET", "/api/session") => Session,
            ("POST", "/api/login") => Login,
            ("POST", "/api/logout") => Logout,
            ("GET", "/api/agents") => Agents,
            ("GET", "/api/approvals") => Approvals,
            ("GET", "/api/grants") => Grants,
            ("GET", "/api/policy") => Policy,
            ("GET", "/api/vault") => Vault,
            ("GET", "/api/suggest") => Suggest,
            ("GET", "/api/audit/stream") => AuditStream,
            ("POST", "/api/approve") => Approve,
            ("POST", "/api/deny") => Deny,
            ("POST", "/api/grants/revoke") => GrantRevoke,
            ("POST", "/api/kill") => Kill,
            ("POST", "/api/resume") => Resume,
            ("POST", "/api/terminate") => Terminate,
            _ => return None,
        };
        Some(r)
    }

    /// The page and its assets hold no data; everything else does.
    pub fn needs_session(self) -> bool {
        !matches!(self, Route::Asset(_) | Route::Login)
    }

    /// Changes what agents may do or who is logged in: Origin and CSRF
    /// checked (login has no session yet, so Origin only).
    pub fn changes_state(self) -> bool {
        matches!(
            self,
            Route::Login
                | Route::Logout
                | Route::Approve
                | Route::Deny
                | Route::GrantRevoke
                | Route::Kill
                | Route::Resume
                | Route::Terminate
        )
    }

    /// The operation's name in logs and refusal records.
    pub fn name(self) -> &'static str {
        match self {
            Route::Asset(_) => "page",
            Route::Session => "session",
            Route::Login => "login",
            Route::Logout => "logout",
            Route::Agents => "agents",
            Route::Approvals => "approvals",
            Route::Grants => "grants",
            Route::Policy => "policy",
            Route::Vault => "vault",
            Route::Suggest => "suggest",
            Route::AuditStream => "audit_stream",
            Route::Approve => "approve",
            Route::Deny => "deny",
            Route::GrantRevoke => "grant_revoke",
            Route::Kill => "kill",
            Route::Resume => "resume",
            Route::Terminate => "terminate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_a_post_and_every_post_is_csrf_checked() {
        for path in [
            "/api/login",
            "/api/logout",
            "/api/approve",
            "/api/deny",
            "/api/grants/revoke",
            "/api/kill",
            "/api/resume",
            "/api/terminate",
        ] {
            let r = Route::parse("POST", path).unwrap();
            assert!(r.changes_state(), "{path}");
            assert_eq!(Route::parse("GET", path), None, "GET {path} must not act");
        }
    }

    #[test]
    fn data_needs_a_session_and_the_page_does_not() {
        assert!(!Route::parse("GET", "/").unwrap().needs_session());
        assert!(!Route::parse("GET", "/app.js").unwrap().needs_session());
        assert!(!Route::parse("POST", "/api/login").unwrap().needs_session());
        for path in [
            "/api/session",
            "/api/agents",
            "/api/approvals",
            "/api/grants",
            "/api/policy",
            "/api/vault",
            "/api/suggest",
            "/api/audit/stream",
        ] {
            let r = Route::parse("GET", path).unwrap();
            assert!(r.needs_session(), "{path}");
            assert!(!r.changes_state(), "{path}");
        }
    }

    #[test]
    fn unknown_paths_and_methods_are_not_routed() {
        for (m, p) in [
            ("GET", "/api/kill"),
            ("PUT", "/api/approve"),
            ("GET", "/etc/passwd"),
            ("GET", "/api/agents/"),
            ("DELETE", "/"),
        ] {
            assert_eq!(Route::parse(m, p), None, "{m} {p}");
        }
    }
}
