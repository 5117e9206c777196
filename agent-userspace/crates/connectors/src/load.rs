//! Reading connector files: parse, check everything, compile into matchers. All errors name
//! the file and the line (from toml spans).

use crate::connector::{Connector, ConnectorSet, is_connector_name};
use crate::credential::{CredentialScheme, CredentialSpec};
use crate::error::{ConnectorError, Problem};
use crate::host::HostPattern;
use crate::pricing::Pricing;
use crate::route::route_key;
use crate::spec::{ConnectorFile, CredentialFile, CredentialOverrideFile, SchemeName};
use http::header::HeaderName;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

impl ConnectorSet {
    /// Load every `*.toml` file of `dir` (sorted by file name).
    pub fn load_dir(dir: &Path) -> Result<ConnectorSet, ConnectorError> {
        let read_dir = |source| ConnectorError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConnectorError::ReadFile {
                    file: path.clone(),
                    source,
                })?;
            sources.push((path, text));
        }
        Self::from_sources(sources)
    }

    /// Load connectors from `(file name, contents)` pairs; the names are used in errors.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<ConnectorSet, ConnectorError> {
        let mut connectors: Vec<Connector> = Vec::new();
        for (file, text) in sources {
            let ctx = Ctx {
                file: &file,
                text: &text,
            };
            let parsed: ConnectorFile = toml::from_str(&text).map_err(|e| {
                ctx.error(e.span(), Problem::Syntax(e.message().trim().to_string()))
            })?;
            let connector = ctx.connector(parsed, &connectors)?;
            tracing::debug!(connector = %connector.name, file = %file.display(), routes = connector.routes.len(), "loaded connector");
            connectors.push(connector);
        }
        Ok(ConnectorSet::new(connectors))
    }
}

pub(crate) struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn error(&self, span: Option<Range<usize>>, problem: Problem) -> ConnectorError {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConnectorError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            problem,
        }
    }

    pub(crate) fn at<T>(&self, s: &Spanned<T>, problem: Problem) -> ConnectorError {
        self.error(Some(s.span()), problem)
    }

    pub(crate) fn line_of<T>(&self, s: &Spanned<T>) -> usize {
        let offset = s.span().start.min(self.text.len());
        self.text[..offset].matches('\n').count() + 1
    }

    fn connector(
        &self,
        f: ConnectorFile,
        earlier: &[Connector],
    ) -> Result<Connector, ConnectorError> {
        let name = f.name.get_ref().clone();
        if !is_connector_name(&name) {
            return Err(self.at(
                &f.name,
                bad_name(
                    "connector",
                    &name,
                    "use lowercase letters, digits, '-' and '_'",
                ),
            ));
        }
        if let Some(first) = earlier.iter().find(|c| c.name == name) {
            return Err(self.at(
                &f.name,
                Problem::DuplicateConnector {
                    name,
                    first_file: first.file.clone(),
                },
            ));
        }
        if f.hosts.is_empty() {
            return Err(self.at(
                &f.name,
                Problem::HostPattern {
                    pattern: String::new(),
                    reason: "`hosts` must list at least one host".into(),
                },
            ));
        }
        let mut hosts = Vec::new();
        for h in &f.hosts {
            let pattern = HostPattern::parse(h.get_ref()).map_err(|reason| {
                self.at(
                    h,
                    Problem::HostPattern {
                        pattern: h.get_ref().clone(),
                        reason,
                    },
                )
            })?;
            let claimed = earlier
                .iter()
                .find(|c| c.hosts.iter().any(|p| p.as_str() == pattern.as_str()));
            if let Some(other) = claimed {
                return Err(self.at(
                    h,
                    Problem::DuplicateHost {
                        pattern: pattern.as_str().into(),
                        other: other.name.clone(),
                    },
                ));
            }
            hosts.push(pattern);
        }
        let (credential, credential_hosts) = match &f.credential {
            Some(c) => self.credential(c, &hosts)?,
            None => (None, Vec::new()),
        };
        let mut routes = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in &f.routes {
            let route = self.route(r, &hosts)?;
            let key = route_key(&route);
            if let Some(first_line) = seen.get(&key) {
                return Err(self.at(
                    r,
                    Problem::DuplicateRoute {
                        method: r.get_ref().method.get_ref().clone(),
                        path: r.get_ref().path.get_ref().clone(),
                        first_line: *first_line,
                    },
                ));
            }
            seen.insert(key, self.line_of(r));
            routes.push(Arc::new(route));
        }
        let pricing = match &f.pricing {
            Some(p) => Some(Pricing::compile(p.get_ref()).map_err(|problem| self.at(p, problem))?),
            None => None,
        };
        let mut mcp = Vec::new();
        for m in &f.mcp {
            let endpoint = self.mcp_endpoint(m, &hosts)?;
            let taken = earlier
                .iter()
                .flat_map(|c| c.mcp.iter())
                .chain(mcp.iter())
                .any(|e: &crate::mcp::McpEndpoint| e.server == endpoint.server);
            if taken {
                return Err(self.at(
                    &m.get_ref().server,
                    Problem::Mcp {
                        server: endpoint.server,
                        reason: "this server name is already declared; names must be unique across connectors".into(),
                    },
                ));
            }
            mcp.push(endpoint);
        }
        Ok(Connector {
            name,
            description: f.description,
            file: self.file.to_path_buf(),
            hosts,
            credential,
            credential_hosts,
            routes,
            pricing,
            mcp,
        })
    }

    #[allow(clippy::type_complexity)]
    fn credential(
        &self,
        c: &Spanned<CredentialFile>,
        hosts: &[HostPattern],
    ) -> Result<(Option<CredentialSpec>, Vec<(HostPattern, CredentialSpec)>), ConnectorError> {
        let f = c.get_ref();
        for env in &f.placeholder_env {
            let ok = !env.is_empty()
                && env
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
                && !env.starts_with(|ch: char| ch.is_ascii_digit());
            if !ok {
                return Err(self.at(
                    c,
                    bad_name(
                        "placeholder_env",
                        env,
                        "use uppercase letters, digits and '_'",
                    ),
                ));
            }
        }
        let default_scheme = scheme(
            f.scheme,
            f.header.as_deref(),
            f.param.as_deref(),
            f.username.as_deref(),
        )
        .map_err(|p| self.at(c, Problem::Credential(p)))?;
        let mut overrides = Vec::new();
        for (host, o) in &f.hosts {
            let CredentialOverrideFile {
                scheme: s,
                header,
                param,
                username,
            } = o.get_ref();
            if !hosts
                .iter()
                .any(|h| h.as_str() == host.to_ascii_lowercase())
            {
                return Err(self.at(o, Problem::RouteHostNotInConnector { host: host.clone() }));
            }
            let pattern = HostPattern::parse(host).map_err(|reason| {
                self.at(
                    o,
                    Problem::HostPattern {
                        pattern: host.clone(),
                        reason,
                    },
                )
            })?;
            let scheme = scheme(*s, header.as_deref(), param.as_deref(), username.as_deref())
                .map_err(|p| self.at(o, Problem::Credential(p)))?;
            overrides.push((
                pattern,
                CredentialSpec {
                    scheme,
                    placeholder_env: f.placeholder_env.clone(),
                },
            ));
        }
        let spec = CredentialSpec {
            scheme: default_scheme,
            placeholder_env: f.placeholder_env.clone(),
        };
        Ok((Some(spec), overrides))
    }
}

pub(crate) fn bad_name(what: &'static str, name: &str, reason: &'static str) -> Problem {
    Problem::BadName {
        what,
        name: name.to_string(),
        reason,
    }
}

fn scheme(
    s: SchemeName,
    header: Option<&str>,
    param: Option<&str>,
    username: Option<&str>,
) -> Result<CredentialScheme, &'static str> {
    let only = |ok_header: bool, ok_param: bool, ok_user: bool| {
        if (header.is_some() && !ok_header)
            || (param.is_some() && !ok_param)
            || (username.is_some() && !ok_user)
        {
            Err(
                "`header` is only for scheme = \"header\", `param` for \"query\", `username` for \"basic\"",
            )
        } else {
            Ok(())
        }
    };
    Ok(match s {
        SchemeName::Bearer => {
            only(false, false, false)?;
            CredentialScheme::Bearer
        }
        SchemeName::Basic => {
            only(false, false, true)?;
            CredentialScheme::Basic {
                username: username.map(String::from),
            }
        }
        SchemeName::Header => {
            only(true, false, false)?;
            let h = header.ok_or("scheme = \"header\" needs `header`")?;
            let name = HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| "`header` is not a valid header name")?;
            CredentialScheme::Header { name }
        }
        SchemeName::Query => {
            only(false, true, false)?;
            let p = param
                .filter(|p| !p.is_empty())
                .ok_or("scheme = \"query\" needs `param`")?;
            CredentialScheme::Query {
                param: p.to_string(),
            }
        }
    })
}
