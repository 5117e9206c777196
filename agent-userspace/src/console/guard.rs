//! Pure checks on a request before it reaches a handler: the Host the
//! browser asked for (no DNS rebinding), the session cookie, and for every
//! change the Origin and the CSRF header. Kept free of sockets so each
//! rule is unit-tested. Behind a reverse proxy (socket mode) the same
//! checks run against the public origin the operator configured.
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "cordon_console";
pub const CSRF_HEADER: &str = "x-cordon-csrf";

/// Why a request was turned away (the status and text the browser gets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown host {0:?}: open the console by the address it listens on")]
    Host(String),
    #[error("not logged in")]
    NoSession,
    #[error("cross-origin request refused")]
    Origin,
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("the reverse proxy sent no {0} header: it must authenticate every request")]
    NoUser(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Host(_) => 421,
            Refusal::NoSession | Refusal::NoUser(_) => 401,
            Refusal::Origin | Refusal::Csrf => 403,
        }
    }
}

/// The headers the checks read.
#[derive(Debug, Default, Clone)]
pub struct Facts<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub csrf: Option<&'a str>,
}

/// Where browsers see the console: the Host names it answers to and the
/// Origins its own pages send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
    /// Behind a reverse proxy, which may forward the Host with or without
    /// its port: the Origin is matched on its own.
    pub proxied: bool,
}

impl Site {
    /// A loopback listener: its address, and `localhost` for a loopback
    /// one. Any other name means a page elsewhere got the browser to
    /// resolve its own name to this address.
    pub fn listening(addr: std::net::SocketAddr) -> Site {
        let hosts = allowed_hosts(addr);
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Site {
            hosts,
            origins,
            proxied: false,
        }
    }

    /// Behind the operator's reverse proxy: the public URL it serves, and
    /// nothing else (a rebinding name forwarded by a catch-all server is
    /// still refused).
    pub fn public(p: &super::config::PublicOrigin) -> Site {
        Site {
            hosts: p.hosts.clone(),
            origins: vec![p.origin.clone()],
            proxied: true,
        }
    }
}

pub fn allowed_hosts(addr: std::net::SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut v = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        v.push(format!("localhost:{port}"));
    }
    v
}

pub fn check_host(facts: &Facts<'_>, allowed: &[String]) -> Result<(), Refusal> {
    let host = facts.host.unwrap_or("");
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(Refusal::Host(host.to_string()))
    }
}

/// The value of cookie `name` in a Cookie header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

pub fn session_id<'a>(facts: &Facts<'a>) -> Result<&'a str, Refusal> {
    facts
        .cookie
        .and_then(|c| cookie_value(c, COOKIE))
        .filter(|v| !v.is_empty())
        .ok_or(Refusal::NoSession)
}

/// A state-changing request must come from the console's own page: its
/// Origin is the console's, and (once logged in) it carries the session's
/// CSRF token in a header no other site can set. On a listener the Origin
/// must name the Host asked for; behind a proxy, the public origin.
pub fn check_origin(facts: &Facts<'_>, site: &Site) -> Result<(), Refusal> {
    let host = facts.host.ok_or(Refusal::Origin)?;
    let origin = facts.origin.ok_or(Refusal::Origin)?;
    let listed = site.origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
    let paired = site.proxied || origin.eq_ignore_ascii_case(&format!("http://{host}"));
    if listed && paired {
        Ok(())
    } else {
        Err(Refusal::Origin)
    }
}

pub fn check_csrf(facts: &Facts<'_>, site: &Site, expected: &str) -> Result<(), Refusal> {
    check_origin(facts, site)?;
    let sent = facts.csrf.ok_or(Refusal::Csrf)?;
    if sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::Csrf)
    }
}

/// The session cookie (token logins on the loopback listener): unreadable
/// to scripts, never sent cross-site.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        super::session::LIFETIME.as_secs()
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(origin: Option<&'a str>, csrf: Option<&'a str>) -> Facts<'a> {
        Facts {
            host: Some("127.0.0.1:9000"),
            origin,
            cookie: Some("a=b; cordon_console=abc123; c=d"),
            csrf,
        }
    }

    #[test]
    fn only_the_listening_address_and_localhost_are_accepted_hosts() {
        let allowed = Site::listening("127.0.0.1:9000".parse().unwrap()).hosts;
        for ok in ["127.0.0.1:9000", "localhost:9000", "LOCALHOST:9000"] {
            let f = Facts {
                host: Some(ok),
                ..Facts::default()
            };
            assert_eq!(check_host(&f, &allowed), Ok(()), "{ok}");
        }
        for bad in [
            Some("evil.example:9000"),
            Some("127.0.0.1:9001"),
            Some(""),
            None,
        ] {
            let f = Facts {
                host: bad,
                ..Facts::default()
            };
            assert!(check_host(&f, &allowed).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(session_id(&facts(None, None)), Ok("abc123"));
        let none = Facts {
            cookie: Some("cordon_console=; x=y"),
            ..Facts::default()
        };
        assert_eq!(session_id(&none), Err(Refusal::NoSession));
        assert_eq!(session_id(&Facts::default()), Err(Refusal::NoSession));
        assert_eq!(cookie_value("xcordon_console=1", COOKIE), None);
    }

    #[test]
    fn a_change_needs_the_console_origin_and_the_session_csrf_token() {
        let site = Site::listening("127.0.0.1:9000".parse().unwrap());
        let ok = facts(Some("http://127.0.0.1:9000"), Some("tok"));
        assert_eq!(check_csrf(&ok, &site, "tok"), Ok(()));
        // localhost is the console too, but its Origin must match its Host.
        let mut other_name = facts(Some("http://localhost:9000"), Some("tok"));
        assert_eq!(check_csrf(&other_name, &site, "tok"), Err(Refusal::Origin));
        other_name.host = Some("localhost:9000");
        assert_eq!(check_csrf(&other_name, &site, "tok"), Ok(()));
        for (origin, csrf, why) in [
            (None, Some("tok"), Refusal::Origin),
            (Some("http://evil.example"), Some("tok"), Refusal::Origin),
            (Some("null"), Some("tok"), Refusal::Origin),
            (Some("https://127.0.0.1:9000"), Some("tok"), Refusal::Origin),
            (Some("http://127.0.0.1:9000"), None, Refusal::Csrf),
            (Some("http://127.0.0.1:9000"), Some("tox"), Refusal::Csrf),
            (Some("http://127.0.0.1:9000"), Some("tok2"), Refusal::Csrf),
            (Some("http://127.0.0.1:9000"), Some(""), Refusal::Csrf),
        ] {
            assert_eq!(
                check_csrf(&facts(origin, csrf), &site, "tok"),
                Err(why),
                "{origin:?} {csrf:?}"
            );
        }
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let c = set_cookie("xyz");
        assert!(c.starts_with("cordon_console=xyz;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn behind_a_proxy_only_the_public_origin_and_its_host_pass() {
        let public = super::super::config::parse_origin("https://cordon.example:8443").unwrap();
        let site = Site::public(&public);
        for host in ["cordon.example:8443", "cordon.example", "CORDON.example"] {
            let f = Facts {
                host: Some(host),
                ..Facts::default()
            };
            assert_eq!(check_host(&f, &site.hosts), Ok(()), "{host}");
        }
        for host in [
            "localhost",
            "evil.test",
            "127.0.0.1:8443",
            "cordon.example:1",
        ] {
            let f = Facts {
                host: Some(host),
                ..Facts::default()
            };
            assert!(check_host(&f, &site.hosts).is_err(), "{host}");
        }
        let change = |origin| Facts {
            host: Some("cordon.example"),
            origin: Some(origin),
            cookie: None,
            csrf: Some("tok"),
        };
        assert_eq!(
            check_csrf(&change("https://cordon.example:8443"), &site, "tok"),
            Ok(())
        );
        for bad in [
            "http://cordon.example:8443",
            "https://cordon.example",
            "https://evil.test",
            "null",
        ] {
            assert_eq!(
                check_csrf(&change(bad), &site, "tok"),
                Err(Refusal::Origin),
                "{bad}"
            );
        }
    }
}
