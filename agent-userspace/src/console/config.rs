//! `[console]` in cordon.toml and the daemon's console flags, resolved into
//! one of two ways to serve the console:
//!
//! - TCP on loopback (`listen`, `--console`): the console logs operators in
//!   with the token `cordon console token` makes;
//! - a unix socket (`socket`, `--console-socket`) behind the operator's own
//!   reverse proxy, which authenticates: the socket's file mode and group
//!   decide who may connect (the proxy), and `public_origin` is the URL
//!   operators open, so the Host and Origin checks still hold.
use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// `[console]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// A loopback address and port, e.g. `127.0.0.1:7443`.
    pub listen: Option<SocketAddr>,
    /// A unix socket path, e.g. `/run/cordon/console.sock`.
    pub socket: Option<PathBuf>,
    /// The group the reverse proxy runs as (socket mode 0660); without it
    /// the socket is root's alone (0600).
    pub socket_group: Option<String>,
    /// The URL operators open through the proxy, e.g.
    /// `https://cordon.example.com` (socket mode only, and needed there).
    pub public_origin: Option<String>,
    /// The request header the proxy puts the authenticated user's name in
    /// (e.g. `X-Remote-User`); requests without it are refused, and the
    /// name goes into the audit trail as the approver.
    pub user_header: Option<String>,
}

/// The console's flags on `cordon daemon`; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct ConsoleFlags {
    pub listen: Option<SocketAddr>,
    pub socket: Option<PathBuf>,
    pub public_origin: Option<String>,
}

/// The site operators' browsers see: the Host names the console answers to
/// and the Origin its pages' changes carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    /// `scheme://host[:port]`, as a browser sends it in `Origin`.
    pub origin: String,
    /// `host[:port]` and `host`: a proxy forwards either (`$http_host`,
    /// `$host`).
    pub hosts: Vec<String>,
}

/// A unix-socket console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConsole {
    pub path: PathBuf,
    pub group: Option<String>,
    pub public: PublicOrigin,
    pub user_header: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleConfig {
    Tcp(SocketAddr),
    Socket(SocketConsole),
}

/// The console can release held actions, so it listens on loopback only:
/// reach it from elsewhere through an SSH tunnel or the operator's own
/// reverse proxy. Loopback is also where the proxy recognises it and
/// refuses agents (`proxy/conn.rs`).
pub fn check_addr(addr: SocketAddr) -> Result<SocketAddr, String> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "console address {addr}: the console listens on loopback only (127.0.0.1 or [::1]); \
             reach it remotely through an SSH tunnel or a reverse proxy (`[console] socket`)"
        ))
    }
}

/// `public_origin`: an http(s) URL with a host and nothing after it.
pub fn parse_origin(text: &str) -> Result<PublicOrigin, String> {
    let bad = |why: &str| format!("console public_origin {text:?}: {why}");
    let u = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(bad("the scheme must be http or https"));
    }
    let host = u
        .host_str()
        .ok_or_else(|| bad("no host"))?
        .to_ascii_lowercase();
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("no user or password belongs in it"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            "only scheme, host and port (the console is served at the root)",
        ));
    }
    let origin = u.origin().ascii_serialization();
    let mut hosts = vec![];
    if let Some(port) = u.port() {
        hosts.push(format!("{host}:{port}"));
    }
    hosts.push(host);
    Ok(PublicOrigin { origin, hosts })
}

fn header_name(name: &str) -> Result<String, String> {
    hyper::header::HeaderName::from_bytes(name.as_bytes())
        .map(|h| h.as_str().to_string())
        .map_err(|_| format!("console user_header {name:?}: not an HTTP header name"))
}

/// Flags over the file; `None` when the console is off.
pub fn resolve(
    flags: ConsoleFlags,
    file: Option<&ConsoleSection>,
) -> Result<Option<ConsoleConfig>, String> {
    let file = file.cloned().unwrap_or_default();
    // A flag for one kind replaces the file's console of either kind.
    let (listen, socket) = match (flags.listen, flags.socket.clone()) {
        (None, None) => (file.listen, file.socket.clone()),
        (l, s) => (l, s),
    };
    match (listen, socket) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(
            "the console listens on a loopback address or a unix socket, not both: \
             set one of [console] listen / socket (--console / --console-socket)"
                .into(),
        ),
        (Some(addr), None) => Ok(Some(ConsoleConfig::Tcp(check_addr(addr)?))),
        (None, Some(path)) => {
            if !path.is_absolute() {
                return Err(format!(
                    "console socket {}: must be an absolute path",
                    path.display()
                ));
            }
            let origin = flags.public_origin.or(file.public_origin).ok_or_else(|| {
                "console socket: set [console] public_origin (or --console-origin) to the URL \
                 operators open through the reverse proxy, e.g. https://cordon.example.com; \
                 the console checks Host and Origin against it"
                    .to_string()
            })?;
            Ok(Some(ConsoleConfig::Socket(SocketConsole {
                path,
                group: file.socket_group,
                public: parse_origin(&origin)?,
                user_header: file.user_header.as_deref().map(header_name).transpose()?,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConsoleSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_console_listens_on_loopback_only() {
        for ok in ["127.0.0.1:7443", "[::1]:7443", "127.0.0.1:0"] {
            assert!(check_addr(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:7443", "[::]:7443", "192.0.2.1:7443"] {
            let e = check_addr(bad.parse().unwrap()).unwrap_err();
            assert!(e.contains("loopback only"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_socket_console_needs_an_absolute_path_and_a_public_origin() {
        let f = file(
            "socket = \"/run/cordon/console.sock\"\nsocket_group = \"www-data\"\n\
             public_origin = \"https://Cordon.Example.com\"\nuser_header = \"X-Remote-User\"\n",
        );
        let Some(ConsoleConfig::Socket(s)) = resolve(ConsoleFlags::default(), Some(&f)).unwrap()
        else {
            panic!("not a socket console");
        };
        assert_eq!(s.path, PathBuf::from("/run/cordon/console.sock"));
        assert_eq!(s.group.as_deref(), Some("www-data"));
        assert_eq!(s.public.origin, "https://cordon.example.com");
        assert_eq!(s.public.hosts, ["cordon.example.com"]);
        assert_eq!(s.user_header.as_deref(), Some("x-remote-user"));

        let no_origin = file("socket = \"/run/c.sock\"\n");
        let e = resolve(ConsoleFlags::default(), Some(&no_origin)).unwrap_err();
        assert!(e.contains("public_origin"), "{e}");
        let relative = file("socket = \"c.sock\"\npublic_origin = \"http://a.test\"\n");
        let e = resolve(ConsoleFlags::default(), Some(&relative)).unwrap_err();
        assert!(e.contains("absolute"), "{e}");
        let both = file("socket = \"/c.sock\"\nlisten = \"127.0.0.1:1\"\n");
        let e = resolve(ConsoleFlags::default(), Some(&both)).unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let bad_header = file(
            "socket = \"/c.sock\"\npublic_origin = \"http://a.test\"\nuser_header = \"a b\"\n",
        );
        assert!(resolve(ConsoleFlags::default(), Some(&bad_header)).is_err());
        assert!(toml::from_str::<ConsoleSection>("listen = \"x\"\n").is_err());
        assert!(toml::from_str::<ConsoleSection>("sock = \"/x\"\n").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_name_the_origin() {
        let f = file("listen = \"127.0.0.1:7443\"\n");
        let flags = ConsoleFlags {
            socket: Some("/run/c.sock".into()),
            public_origin: Some("http://127.0.0.1:8080".into()),
            ..ConsoleFlags::default()
        };
        let Some(ConsoleConfig::Socket(s)) = resolve(flags, Some(&f)).unwrap() else {
            panic!("the flag did not win");
        };
        assert_eq!(s.public.hosts, ["127.0.0.1:8080", "127.0.0.1"]);
        let flags = ConsoleFlags {
            listen: Some("127.0.0.1:9".parse().unwrap()),
            ..ConsoleFlags::default()
        };
        assert_eq!(
            resolve(flags, Some(&f)).unwrap(),
            Some(ConsoleConfig::Tcp("127.0.0.1:9".parse().unwrap()))
        );
        assert_eq!(resolve(ConsoleFlags::default(), None).unwrap(), None);
    }

    #[test]
    fn a_public_origin_is_scheme_host_and_port_only() {
        let o = parse_origin("http://console.test:8080").unwrap();
        assert_eq!(o.origin, "http://console.test:8080");
        // The default port is left out, as browsers leave it out of Origin.
        assert_eq!(
            parse_origin("https://c.test:443/").unwrap().origin,
            "https://c.test"
        );
        for bad in [
            "ftp://c.test",
            "https://c.test/console",
            "https://c.test/?a=1",
            "https://user:pw@c.test",
            "c.test",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
